// Shared upstream connections (upstream.sharing: auto).
//
//   session A ─┐ send(A, cmd)            ┌─▶ A.on_shared_reply(frame)
//   session B ─┼──▶ out_ ──one write per──▶ upstream ──▶ framer_ ──▶ routes_ (FIFO)
//   session C ─┘     (check handle: once per loop turn)  └─▶ B.on_shared_reply(frame)
//
// Sessions that hold no connection state (proxy/commands/connection_state.h)
// append their requests to one shared connection's output; it is written
// once per loop turn, so fifty one-at-a-time clients become one pipelined
// stream.  Every forwarded command gets exactly one reply (no command that
// pushes, subscribes, blocks or silences replies runs here), so a FIFO of
// (session, count) routes each reply frame back, in order.  The gate is not
// involved: a session holds its replies exactly as on its own connection.
//
// Offsets without a probe: after each write that carries commands the gate
// holds, a ROLE goes on the same connection.  Valkey runs one connection's
// pipelined commands in order, so the ROLE's offset covers every effect of
// the commands before it, and its answer comes in the same read as their
// replies.  Those replies are routed with that offset (on_shared_reply's
// `offset`), and the session's hold waits for the log to reach it instead
// of for a control-link probe sent after the reply arrived (which would
// also cover writes made since).  From the first reply of a write on,
// replies wait in the read buffer for their ROLE answer (up to
// kOffsetWaitBytes; past that they go without an offset); the replies
// before it (reads, mostly) go at once.
// An offset counts only from the upstream process the proxy verified
// (INFO server's run_id, asked when the connection opens, against
// ProxyContext::upstream_run_id) while the proxy serves and the log works;
// otherwise, and when ROLE is refused (ACL), replies go with offset 0 and
// the session covers them with a control-link probe as usual.
//
// A shared connection never authenticates: it runs with the rights of a
// new connection (the default user), which is what a client that has not
// sent AUTH has on its own connection; AUTH and HELLO move a client to its
// own connection.  It names itself (upstream/connection_names.h); that
// reply is swallowed.
//
// Lifetime: SharedPool owns its connections.  A connection that fails
// (connect error, EOF, an unreadable or unasked-for reply) tells every
// attached client (on_shared_gone: as if its own connection had closed)
// and leaves its slot; the next pick opens a new one.  It frees itself
// once its handle has closed.  Loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/base/byte_buffer.h"
#include "proxy/resp/reply_framer.h"
#include "proxy/session/context.h"

namespace dp {

class SharedUpstream;

// What a shared connection routes to (Session).  A client stays valid until
// detach() or on_shared_gone(), and, after either, until the loop turn
// ends (a session frees itself only from a handle's close callback).
class SharedClient {
 public:
  // One reply, in the order the client's commands were sent.  `offset`:
  // nonzero, a log offset that covers everything the command did (the ROLE
  // behind it); 0, none known.
  virtual void on_shared_reply(std::string_view frame, const resp::Frame& f, uint64_t offset) = 0;
  // After the replies of one read: release, flush, read on.
  virtual void on_shared_read_done() = 0;
  // The connection failed: every command not answered is lost, as if the
  // client's own connection had closed.  The client is detached already.
  virtual void on_shared_gone(const std::string& why) = 0;
  // The connection's unsent output fell below its bound: read requests again.
  virtual void on_shared_writable() = 0;

 protected:
  ~SharedClient() = default;

 private:
  friend class SharedUpstream;
  SharedUpstream* shared_conn_ = nullptr;
  size_t shared_slot_ = 0;       // index in the connection's attached_
  bool shared_touched_ = false;  // got a reply in the read being processed
};

class SharedUpstream {
 public:
  SharedUpstream(ProxyContext* ctx, uint32_t index);
  SharedUpstream(const SharedUpstream&) = delete;
  SharedUpstream& operator=(const SharedUpstream&) = delete;

  void attach(SharedClient* c);
  // The client's commands still in flight are answered to nobody.
  void detach(SharedClient* c);
  // One whole request of `c`; written at the end of this loop turn.
  // `wants_offset`: its reply may be held, so a ROLE follows the write.
  void send(SharedClient* c, std::string_view request, bool wants_offset);
  // Unsent request bytes: clients stop reading requests past `bound()`.
  uint64_t queued_bytes() const { return out_.size() + writing_.size(); }
  uint64_t bound() const { return ctx_->cfg->client_buffer_bytes; }
  bool failed() const { return failed_; }
  size_t attached() const { return attached_.size(); }
  uint64_t in_flight() const { return in_flight_; }
  // Figures: ROLEs sent behind writes, and replies routed with their offset.
  uint64_t roles_sent() const { return roles_sent_; }
  uint64_t replies_with_offset() const { return replies_with_offset_; }

  // Replies waiting for their ROLE answer keep at most this many bytes in
  // the read buffer; past it they go on without an offset.
  static constexpr size_t kOffsetWaitBytes = 1 << 20;

  // Closes the connection (shutdown): attached clients are told it is gone.
  void close(const std::string& why) { fail(why); }

 private:
  ~SharedUpstream() = default;  // deleted from the handle's close callback
  enum class RouteKind : uint8_t { client, role, run_id };
  struct Route {
    SharedClient* client;  // nullptr: detached (or the proxy's own request), dropped
    uint32_t count;
    RouteKind kind = RouteKind::client;
    bool batch_end = false;  // the last of a write with no ROLE behind it
    bool wants_offset = false;  // its replies wait for the ROLE behind them (send()'s wants_offset)
  };
  struct Framed {
    size_t pos;  // from the start of the unconsumed input
    resp::Frame f;
  };
  static void on_connect(uv_connect_t* req, int status);
  static void on_check(uv_check_t* c);
  static void alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
  static void on_written(uv_write_t* req, int status);
  void connect();
  void schedule_flush();
  void flush();
  void route(std::string_view input, ByteBuffer* owner);
  void route_input(std::string_view input, ByteBuffer* owner);
  // Delivers framed_[from, to) with `offset`; false if the connection failed.
  bool deliver(std::string_view input, size_t from, size_t to, uint64_t offset);
  bool offsets_trusted() const;
  void fail(const std::string& why);
  void maybe_writable();

  ProxyContext* ctx_;
  uint32_t index_;
  uv_tcp_t tcp_{};
  uv_connect_t connect_req_{};
  uv_write_t write_req_{};
  uv_check_t check_{};
  bool connected_ = false;
  bool writing_now_ = false;
  bool failed_ = false;
  bool was_full_ = false;  // queued_bytes() reached bound(): tell clients when it falls
  int open_handles_ = 0;
  ByteBuffer out_, writing_, in_;
  resp::ReplyFramer framer_;
  std::deque<Route> routes_;
  uint64_t in_flight_ = 0;  // requests sent (or queued) and not answered
  std::vector<Framed> framed_;  // complete replies not routed yet (waiting for their ROLE)
  size_t framed_end_ = 0;       // bytes of the unconsumed input framed so far
  uint32_t roles_pending_ = 0;  // ROLE routes in routes_
  bool role_due_ = false;       // a command that wants an offset went into out_
  bool role_refused_ = false;   // ROLE answered -NOPERM: no more ROLEs here
  bool role_warned_ = false;    // a ROLE without an offset was logged
  bool routing_ = false;        // inside route()
  std::string run_id_;          // INFO server's run_id of the process this reached
  uint64_t roles_sent_ = 0;
  uint64_t replies_with_offset_ = 0;
  std::vector<SharedClient*> attached_;
  std::vector<SharedClient*> touched_;
};

// The pool: `size` connection slots; clients are spread round-robin over
// them.  Owned by Proxy (ProxyContext::shared_pool while sharing is on).
//
// Sharing is safe only while a new connection needs no AUTH (the default
// user is on and nopass): a shared connection is then exactly what a
// client's own new connection would be.  Where new connections must
// authenticate, a shared one would either answer -NOAUTH for everyone or,
// opened before `requirepass` was set, let clients in without it, and
// Valkey's limits for unauthenticated connections (10 arguments, 16 KB
// bulks, then a close) would let one client close it for all.  So a probe
// connection opens every second and sends, without AUTH,
//   PING                                   +PONG: new connections need no AUTH
//   CLIENT SETINFO LIB-NAME <probe name>   +OK: the default user may SETINFO
//   INFO cluster                           cluster_enabled (WAIT after a move)
//   CLIENT SETNAME durable-proxy-probe     (for CLIENT LIST)
// and the pool shares only while the last probe got +PONG; when that
// changes, every shared connection closes (their clients with them, as if
// the server had closed their own connections) and clients use their own.
class SharedPool {
 public:
  SharedPool(ProxyContext* ctx, uint32_t size);
  ~SharedPool();
  SharedPool(const SharedPool&) = delete;
  SharedPool& operator=(const SharedPool&) = delete;

  // A live connection for a new client (opening one where the slot is
  // empty); nullptr while sharing is not safe (see above) or after close_all.
  SharedUpstream* pick();
  // Per the last probe: the default user may CLIENT SETINFO (a shared
  // client's SETINFO is answered by the session); the server is a cluster
  // node (PUBLISH does not propagate there).
  bool setinfo_allowed() const { return setinfo_ok_; }
  bool sharing() const { return usable_ && !closed_; }
  bool cluster() const { return cluster_; }
  // A slot's connection failed: it is forgotten (it frees itself).
  void forget(SharedUpstream* c);
  // Shutdown: every connection closes.
  void close_all(const std::string& why);
  size_t connections() const;

 private:
  struct Probe;
  static void on_probe_timer(uv_timer_t* t);
  void start_probe();
  void probe_done(bool answered, bool auth_free, bool setinfo_ok, bool cluster);

  ProxyContext* ctx_;
  std::vector<SharedUpstream*> slots_;
  uint32_t next_ = 0;
  bool closed_ = false;
  bool usable_ = false;     // the last probe's PING got +PONG
  bool setinfo_ok_ = false;
  bool cluster_ = true;     // until a probe says otherwise
  uv_timer_t* timer_ = nullptr;  // owned; freed in its close callback
  Probe* probe_ = nullptr;       // in flight; frees itself
};

}  // namespace dp
