// The proxy as a replica of its upstream: one connection that does the
// replica handshake, receives the RDB of a full resync (passed through in
// chunks, never buffered whole) and then the replication stream, byte for
// byte, with its offsets.  It acknowledges (REPLCONF ACK) only offsets the
// owner reported durable, so the upstream's WAIT counts the proxy only for
// bytes that are fsynced in its log.
//
//   connect ─▶ AUTH? ─▶ PING ─▶ INFO server ─▶ REPLCONF listening-port
//     ─▶ REPLCONF capa eof capa psync2 ─▶ REPLCONF version V? ─▶ PSYNC
//        +FULLRESYNC ─▶ "\n"* ─▶ $<len>\r\n<rdb> | $EOF:<mark>\r\n<rdb><mark>
//                    ─▶ stream (ACK at once, then every 100 ms until bytes flow)
//        +CONTINUE   ─▶ stream
//
// Offsets: `offset` X means "the last stream byte held is byte number X";
// after +FULLRESYNC <id> C the first stream byte is C+1.
//
// FACK: "REPLCONF ACK <o> FACK <o>" is sent only to Valkey (INFO has
// valkey_version) or to servers whose redis_version is >= 7.2.  The link
// asks "INFO server" during the handshake (an error reply, e.g. an ACL that
// denies INFO, means: no FACK and no REPLCONF version).
//
// REPLCONF version: Valkey >= 8.0 records a replica's version (8.0/8.1 use
// it only in cluster mode); Valkey 9.x picks the RDB version of a full sync
// from it and sends RDB 11 (Redis 7.2's, which cannot hold hash fields with
// TTLs) to a replica that announced none.  The link announces the upstream's
// own valkey_version, so the RDB is one the upstream itself can load again
// (the restore plays it back).  Redis and Valkey 7.2 answer an unknown
// REPLCONF option with an error, so it is sent only to valkey_version >= 8.
//
// Replies are decoded by resp::decode_value and commands encoded by
// resp::append_command; the RDB (either framing) is read by RdbReceiver.
//
// Threads: everything on the loop thread that owns `loop`.
// Ownership: the link owns its handles; the listener must outlive the link
// (until close()'s callback).  The listener may call any method, including
// start(), close(), pause() and durable(), from inside its callbacks.  After
// close() the listener is never called again.  The destructor requires a
// completed close().
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/base/lifecycle.h"
#include "proxy/resp/value.h"
#include "proxy/upstream/rdb_receiver.h"
#include "proxy/upstream/server_capabilities.h"  // info_server_has_fack, info_server_replconf_version

namespace dp::upstream {

struct ReplicaLinkOptions {
  std::string host;  // name or address; resolved on every start()
  uint16_t port = 6379;
  std::string username, password;  // AUTH (the proxy's own user); empty password = no AUTH
  uint16_t listening_port = 0;     // REPLCONF listening-port (the proxy's client port); 0 = not sent
  uint32_t connect_timeout_ms = 2000;    // resolve + TCP connect
  uint32_t handshake_timeout_ms = 10000; // no byte for this long before the PSYNC reply: drop
  uint32_t idle_timeout_ms = 60000;      // no byte for this long after PSYNC (RDB, stream): drop
  uint32_t ack_interval_ms = 1000;       // periodic REPLCONF ACK
  size_t read_pause_bytes = 0;           // unused; backpressure is via pause()/resume()
  std::string client_name;               // CLIENT SETNAME before PSYNC (CLIENT LIST); empty = not sent
};

enum class LinkState { disconnected, connecting, handshake, receiving_rdb, streaming };
const char* to_string(LinkState s);

class ReplicaLink {
 public:
  struct Listener {
    virtual ~Listener() = default;
    // +FULLRESYNC <replid> <offset>: an RDB follows (size known or diskless EOF-marked).
    virtual void on_full_resync(const std::string& replid, uint64_t offset) = 0;
    virtual void on_rdb_data(std::string_view bytes) = 0;  // raw RDB bytes, in order (EOF mark stripped)
    virtual void on_rdb_done() = 0;  // whole RDB received; stream bytes follow at offset+1
    // +CONTINUE [new replid]: the stream continues from the offset asked. new_replid empty if unchanged.
    virtual void on_continue(const std::string& new_replid) = 0;
    // Stream bytes, byte for byte; the first byte is stream byte number
    // `first_offset` (= previous end + 1).  `bytes` is valid only during the call.
    virtual void on_stream(std::string_view bytes, uint64_t first_offset) = 0;
    // State changes; on disconnected, `reason` names the upstream address and
    // the cause (errno text, timeout, or the server's error line).
    virtual void on_state(LinkState state, const std::string& reason) = 0;
  };

  ReplicaLink(uv_loop_t* loop, ReplicaLinkOptions opts, Listener* listener);
  ~ReplicaLink();  // must be closed first
  ReplicaLink(const ReplicaLink&) = delete;
  ReplicaLink& operator=(const ReplicaLink&) = delete;

  // Starts (or restarts, dropping any current connection without an
  // on_state(disconnected)) the handshake.  replid empty or "?" => PSYNC ? -1;
  // else PSYNC <replid> <offset+1>, offset being the last stream byte held.
  void start(const std::string& replid, uint64_t offset);
  // The durable (fsynced) offset moved: send "REPLCONF ACK <o> [FACK <o>]",
  // coalesced to at most one per loop turn.  The offset acknowledged is
  // min(durable, received_offset()): never more than was reported durable,
  // never more than this history has delivered (after a FULLRESYNC the
  // previous history's durable offset is meaningless until the owner reports
  // the new checkpoint's offset).
  void durable(uint64_t offset);
  // A REPLCONF GETACK arrived in the stream: ack the durable offset now.
  void ack_now();
  void pause();   // stop reading the socket (backpressure); ACKs still go out; idle timeout suspended
  void resume();
  LinkState state() const { return state_; }
  void close(std::function<void()> on_closed);  // idempotent; on_closed runs on the loop

  uint64_t received_offset() const { return received_offset_; }  // last stream byte received
  uint64_t reconnects() const { return reconnects_; }             // start() calls after the first
  uint64_t acked_offset() const { return acked_offset_; }         // last offset sent in an ACK

 private:
  struct Conn;
  enum class Step { auth, ping, setname, info, port, capa, version, psync };

  void connect_resolved(Conn* c, const struct addrinfo* ai);
  void on_connected(Conn* c);
  void on_read(const char* data, size_t n);
  size_t feed_handshake(std::string_view in);  // bytes used
  size_t feed_rdb(std::string_view in);        // bytes used
  void handle_reply(const resp::Value& reply);
  void handle_psync_reply(const resp::Value& reply);
  void rdb_finished();
  void send_step();
  void send_command(std::initializer_list<std::string_view> args);  // RESP-encoded
  void send_raw(const char* data, size_t n);
  void send_ack();
  void on_tick();
  void on_check();
  void drop(const std::string& why);   // disconnect + on_state(disconnected)
  void fail_soon(std::string why);     // drop from the next tick (errors met inside calls)
  void detach_conn();                  // close the connection quietly
  void set_state(LinkState s, const std::string& reason = {});
  void start_reading();
  void maybe_finish_close();
  std::string where() const;

  uv_loop_t* loop_;
  ReplicaLinkOptions opts_;
  Listener* listener_;

  uv_timer_t tick_{};   // timeouts + periodic ACKs
  uv_check_t check_{};  // coalesced ACK after durable()
  uv_idle_t idle_{};    // keeps the loop from blocking while an ACK is due
  Conn* conn_ = nullptr;

  LinkState state_ = LinkState::disconnected;
  Lifecycle life_;
  int pending_closes_ = 0;
  int live_conns_ = 0;       // Conn objects not yet freed (detached ones close asynchronously)
  std::string pending_error_;
  uint64_t generation_ = 0;  // bumped on every detach: stale callbacks see a change

  // handshake
  Step step_ = Step::auth;
  std::string psync_replid_;
  uint64_t psync_offset_ = 0;
  std::string reply_;  // a handshake reply not yet complete
  bool fack_ = false;
  std::string replconf_version_;  // REPLCONF version to send; "" = none
  uint64_t last_byte_ms_ = 0;
  uint64_t connect_started_ms_ = 0;

  RdbReceiver rdb_;

  // stream + ACKs
  uint64_t received_offset_ = 0;
  uint64_t durable_offset_ = 0;
  uint64_t acked_offset_ = 0;
  uint64_t last_ack_ms_ = 0;
  bool stream_flowing_ = false;  // a stream byte arrived since the RDB / CONTINUE
  bool ack_due_ = false;
  bool paused_ = false;
  uint64_t starts_ = 0;
  uint64_t reconnects_ = 0;

  std::unique_ptr<char[]> read_buf_;
};

}  // namespace dp::upstream
