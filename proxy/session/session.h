// One client connection and its upstream connection: its own (1:1), or,
// with upstream.sharing: auto, a shared one until its first command that
// needs connection state (proxy/session/shared_upstream.h).
//
//   client ──read──▶ request_parser ──classify──▶ forward (same bytes) ──▶ upstream
//                         │ pending_ (one record per command, in order)
//   client ◀──write── out_ ◀── held_ (gate::ReplyQueue) ◀── reply_framer ◀── upstream
//                                  ▲ released when the gate says durable
//
// The session tracks only the state framing and holds need: selected db,
// RESP version, MULTI, subscriptions, MONITOR, CLIENT REPLY mode, and
// whether it became a raw pipe (SYNC/PSYNC, only with
// durability.allow_replica_sync) or a slot migration link (CLUSTER
// SYNCSLOTS ESTABLISH: requests raw, the node's messages held like
// writes).  That state follows the server's answers, not the requests:
// the db from SELECT's +OK (or EXEC's element for a
// queued SELECT; unknown while one is in flight: reads then wait if
// anything is pending and writes mark every db), the protocol from HELLO's
// reply, subscribed mode from the counts in the confirmations (channels +
// patterns and shard channels, apart, as the server counts them), MULTI as
// open only once its +OK arrived (before that, what follows is held as if
// it ran at once).  Replies leave strictly in command order; a held reply
// holds those behind it.  Replies the proxy answers itself (INFO
// durability, WAITAOF from the log, refusals of commands that would move
// the upstream to another history: commands/history_guard.h) are queued in
// the same order.
//
// Sharing: a shared session forwards to a SharedUpstream and gets its
// replies frame by frame (on_shared_reply); it holds no connection state
// (db 0, RESP2, no MULTI...).  Before a command that needs its own
// connection (commands/connection_state.h) it stops reading requests,
// connects its own upstream, waits until its commands in flight on the
// shared connection are answered, then goes on there, for good.  A valid
// CLIENT SETINFO is answered +OK by the session and sent again on its own
// connection if it moves.
//
// Lifetime: created by the listener, deletes itself after both handles are
// closed (close() is idempotent).  A client that leaves: the upstream gets a
// write shutdown so Valkey finishes what it read, replies are swallowed,
// and unresolved write marks are covered by a probe once the upstream has
// closed.  Loop thread only.
//
// Files: session.cc (lifetime, sockets, backpressure, endings),
// session_requests.cc (the request path), session_replies.cc (the reply
// path; the held replies wait in a gate::ReplyQueue, proxy/gate/reply_queue.h).
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "proxy/admin/metrics.h"
#include "proxy/base/byte_buffer.h"
#include "proxy/base/lifecycle.h"
#include "proxy/commands/command_table.h"
#include "proxy/session/context.h"
#include "proxy/gate/durability_gate.h"
#include "proxy/gate/reply_queue.h"
#include "proxy/resp/reply_framer.h"
#include "proxy/resp/request_parser.h"
#include "proxy/session/shared_upstream.h"

namespace dp {

class Session : public gate::GateClient, public SharedClient {
 public:
  Session(ProxyContext* ctx, uint64_t id);
  ~Session() override;

  // Accepts from `server`; false (and the session closes itself) on error.
  bool accept(uv_stream_t* server);
  uint64_t id() const { return id_; }

  // Stop reading requests; close once every due reply is delivered.
  void drain();
  void close(const std::string& why);
  // Nothing is due to the client: idle, subscribed or in MONITOR with no
  // reply pending, or blocked without a deadline (BLPOP ... 0).  Shutdown
  // closes such a session at once.
  bool nothing_due() const;

  // gate::GateClient
  void on_release() override;
  void on_fail(const std::string& reason) override;

  // SharedClient
  void on_shared_reply(std::string_view frame, const resp::Frame& f, uint64_t offset) override;
  void on_shared_read_done() override;
  void on_shared_gone(const std::string& why) override;
  void on_shared_writable() override { update_reading(); }

  // Global held-byte bound dropped: reading may resume.
  void maybe_resume();

  uint64_t held_bytes() const { return held_.bytes(); }
  size_t held_count() const { return held_.size(); }
  // Adds this session's held replies and bytes, by admin::HoldKind index,
  // to `counts` and `bytes` (arrays of kHoldKindCount); walks the queue.
  static constexpr size_t kHoldKindCount = gate::ReplyQueue::kKindCount;
  void add_held_by_kind(uint64_t* counts, uint64_t* bytes) const { held_.add_by_kind(counts, bytes); }

 private:
  static constexpr int kDbUnknown = -1;
  // Sharing bounds (session_requests.cc): commands ahead on a shared
  // connection, and unsent reply bytes past which a client moves to its own.
  static constexpr uint64_t kSharedInFlight = 8;
  static constexpr uint64_t kSharedUnsentMove = 1 << 20;
  struct MultiSelect {
    uint32_t index;  // position among the transaction's queued commands
    int db;          // db asked (kDbUnknown: not a valid index)
  };
  // One record per command the session took, in command order (the
  // pending list): what its reply needs when it arrives, and what the
  // command owns until then.  Forwarded commands wait for the upstream's
  // reply; `local` ones carry the reply the proxy answers itself, in the
  // same order.  A record's variable bytes (a local reply, a read's keys)
  // sit in pending_bytes_, in record order, so that a pipeline of reads
  // costs no allocation per command: push_pending appends them, the front
  // record's are front_bytes(), pop_pending consumes them.
  enum class PendingType : uint8_t { reply, local, pubsub, raw_switch };
  struct Pending {
    PendingType type = PendingType::reply;
    commands::Kind kind = commands::Kind::write;
    commands::Special special = commands::Special::none;
    bool drop = false;          // CLIENT REPLY OFF/SKIP: swallow the reply
    bool close_after = false;   // protocol error: close once delivered
    bool local_probe = false;   // local reply that waits like a write (WAITAOF)
    bool db_change = false;     // SELECT, RESET, EXEC with a SELECT: counted in db_changes_
    bool exec_pubsub = false;   // EXEC of a MULTI that queued a pub/sub command
    bool maybe_queued = false;  // sent in a MULTI not answered yet: +QUEUED or its own reply
    bool blocks_forever = false;  // blocking command with timeout 0: no reply due
    bool has_token = false;     // a write the gate tracks: its marks are in `token` (maybe none)
    bool woff_marker = false;   // the PUBLISH sent after a move (maybe_finish_move): its reply is checked
    int db = 0;                 // db the command runs in (kDbUnknown: not known when forwarded)
    int arg = 0;                // SELECT: db asked (kDbUnknown: not a valid index); HELLO: version asked;
                                // MULTI: its serial; pub/sub: confirmations due (0: not known)
    uint32_t confirmations = 0; // pub/sub: confirmations received
    uint32_t nbytes = 0;        // its bytes in pending_bytes_ (local: the reply; read: its keys,
                                // each as [length u32][bytes])
    gate::Token token;          // write marks, resolved by the probe that covers the reply
    std::vector<MultiSelect> selects;  // EXEC with db_change: the SELECTs of its transaction
  };
  // How queue_reply queues a reply.
  struct Hold {
    bool wait = false;              // for the gate: covered by a probe, leaves once durable
    uint64_t wait_at = 0;           // with wait: a log offset known to be enough (0: a new probe)
    uint64_t known_at = 0;          // with wait: an offset covering all the command did (a shared ROLE)
    gate::Token* token = nullptr;   // write marks the covering probe resolves
    bool close_after = false;       // close once delivered
    bool message = false;           // a pub/sub message or MONITOR line: nothing due at shutdown
    admin::HoldKind kind = admin::HoldKind::write;  // metrics, when it waits
  };
  enum class ReplyMode : uint8_t { on, off, skip_next };

  // libuv plumbing
  static void alloc_client(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void alloc_upstream(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_client_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
  static void on_upstream_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
  void consume(ssize_t n, const uv_buf_t* buf, bool shared, ByteBuffer* own,
               void (Session::*process)(std::string_view, ByteBuffer*), void (Session::*gone)(const std::string&),
               const char* eof_text);
  static void on_connect(uv_connect_t* req, int status);
  static void on_client_written(uv_write_t* req, int status);
  static void on_upstream_written(uv_write_t* req, int status);
  static void on_handle_closed(uv_handle_t* h);

  enum class FrameRole : uint8_t { reply, confirmation, message, passive };

  // requests
  void process_requests(std::string_view input, ByteBuffer* owner);
  void handle_request(std::string_view bytes);
  void mark_write(gate::Token* t);
  void consume_skip();
  void refuse_history_change(const std::string& why);
  void refuse_queued(const std::string& error);  // answers `error`; in MULTI the transaction aborts
  void end_multi();
  void db_change_answered(int db);
  void forward(std::string_view bytes);
  void answer_locally(std::string_view reply, bool close_after = false, bool wait = false);
  // Appends `p`, with `bytes` after any add_read_key() made for it (which
  // must be the last bytes appended: no other record's in between).
  void push_pending(Pending&& p, std::string_view bytes = {});
  void add_read_key(Pending* p, std::string_view key);
  std::string_view front_bytes() const { return {pending_bytes_.data(), pending_.front().nbytes}; }
  void pop_pending();
  void forget_pending();  // the upstream is gone: no reply will come
  void protocol_error(const std::string& text);
  void flush_upstream();
  void connect_upstream();   // its own connection
  void begin_move();         // to its own connection: stop taking requests, connect
  void maybe_finish_move();  // connected and nothing in flight on the shared one: go on there
  void move_failed(const char* cause);

  // replies
  void process_replies(std::string_view input, ByteBuffer* owner);
  FrameRole frame_role(std::string_view frame, const resp::Frame& f);
  void count_subscriptions(const resp::FrameElements& el);
  void count_exec_subscriptions(std::string_view frame, const resp::Frame& f);
  void on_frame(std::string_view frame, const resp::Frame& f);
  void apply_reply_effects(const Pending& p, std::string_view frame, const resp::Frame& f);
  uint64_t read_wait(const Pending& front) const;
  void queue_reply(std::string_view bytes, const Hold& h);
  void take_locals();
  void finish_pubsub();  // the pub/sub record at the front got its confirmations
  void release();
  void flush_client();
  void after_io();
  void update_reading();

  // endings
  void upstream_unreachable(const char* cause);
  void send_unreachable_error();
  static void on_unreachable_timer(uv_timer_t* t);
  void upstream_gone(const std::string& why);
  void client_left(const std::string& why);
  void start_swallow();
  void cover_outstanding();

  ProxyContext* ctx_;
  uint64_t id_;
  uv_tcp_t client_{};
  uv_tcp_t upstream_{};
  uv_connect_t connect_req_{};
  uv_write_t client_write_{};
  uv_write_t upstream_write_{};
  uv_shutdown_t shutdown_req_{};
  int open_handles_ = 0;

  resp::RequestParser parser_;
  resp::ReplyFramer framer_;
  resp::Request req_;
  commands::Classification cls_;

  ByteBuffer in_;        // unparsed client bytes
  ByteBuffer up_in_;     // unframed upstream bytes
  ByteBuffer up_out_;    // requests to forward (accumulating)
  ByteBuffer up_writing_;// requests being written
  ByteBuffer out_;       // released replies (accumulating)
  ByteBuffer writing_;   // replies being written
  std::deque<Pending> pending_;  // one per command taken, in order
  ByteBuffer pending_bytes_;     // the records' bytes, in record order
  uint32_t writes_in_flight_ = 0;  // records of pending_ with has_token
  gate::ReplyQueue held_;        // replies queued behind a held one, in order
  gate::Token multi_token_;      // marks of the open MULTI's queued writes

  // connection state.  What decides holds follows the server's answers:
  // db_ is the db the next forwarded command runs in, kDbUnknown while a
  // command that may change it is unanswered (then reads wait for a probe
  // if anything is pending and writes mark every db).
  int db_ = 0;
  int confirmed_db_ = 0;        // per the replies read so far (kDbUnknown: lost track)
  uint32_t db_changes_ = 0;     // forwarded db changes not answered yet
  uint32_t multi_queued_ = 0;   // commands forwarded into the open MULTI
  bool multi_pubsub_ = false;   // the open MULTI queued a pub/sub command
  bool multi_answered_ = true;  // the open MULTI got its +OK
  uint32_t multi_serial_ = 0;   // MULTIs that opened a transaction
  std::vector<MultiSelect> multi_selects_;  // SELECTs of the open MULTI
  int resp_ = 2;
  bool in_multi_ = false;
  bool subscribed_ = false;   // subscribed mode (in RESP2 messages are arrays)
  long long subscriptions_ = 0;        // channels + patterns, per the last confirmation
  std::string_view confirmation_kind_;  // frame_role -> on_frame: kind of the confirmation at hand
  long long shard_subscriptions_ = 0;  // shard channels, per the last S(UN)SUBSCRIBE confirmation
  // Of subscriptions_, the channels and the patterns (each confirmation's
  // change of the count, by its kind): an argument-less UNSUBSCRIBE /
  // PUNSUBSCRIBE / SUNSUBSCRIBE gets one confirmation per member it had
  // (one when none).
  long long channel_subscriptions_ = 0;
  long long pattern_subscriptions_ = 0;
  long long confirmation_prior_ = 0;   // frame_role -> on_frame: that kind's members before it
  bool monitor_ = false;
  ReplyMode reply_mode_ = ReplyMode::on;
  bool raw_client_ = false;   // requests forwarded raw (after SYNC/PSYNC, CLUSTER SYNCSLOTS ESTABLISH)
  bool raw_upstream_ = false; // replies passed raw

  // Sharing (see the top): the shared connection while on one; moving_
  // from the command that needs its own connection until it runs there.
  SharedUpstream* shared_ = nullptr;
  bool moving_ = false;
  uint64_t shared_in_flight_ = 0;   // commands sent on shared_ not answered yet
  uint64_t shared_offset_ = 0;      // while a shared reply is handled: the offset it came with
  // CLIENT SETINFO answered here: the last LIB-NAME and LIB-VER request,
  // sent on its own connection if it moves (at most two).
  std::string kept_lib_name_, kept_lib_ver_;
  // Its own connection's WAIT cannot be trusted to count its shared
  // writes: the marker PUBLISH failed, or PUBLISH does not propagate
  // (cluster mode).  WAIT / WAITAOF there are refused with this reason.
  std::string wait_untrusted_;
  bool awaiting_marker_ = false;  // moved; requests wait for the marker's reply (it may set wait_untrusted_)
  bool resume_after_marker_ = false;  // the marker's reply came: after_io takes the requests in in_
  uint64_t forwarded_ = 0;          // commands forwarded (metrics)
  bool wrote_shared_ = false;       // a write went out on a shared connection

  bool connecting_ = false;
  bool connected_ = false;
  bool upstream_writing_ = false;
  bool client_writing_ = false;
  bool reading_client_ = false;
  bool reading_upstream_ = false;
  bool draining_ = false;          // no new requests (shutdown)
  bool stop_requests_ = false;     // protocol error seen
  bool upstream_closed_ = false;
  bool client_gone_ = false;
  bool close_when_flushed_ = false;
  Lifecycle life_;  // open until close(); closed once every handle's callback ran
  std::string fail_reason_;
  // Upstream unreachable before the client sent anything: the error waits
  // (at most kUnreachableWaitMs) to answer the client's first request, so
  // request/reply clients (redis-py) read it as a reply, not stray data.
  bool client_spoke_ = false;
  std::string unreachable_error_;
  uv_timer_t* unreachable_timer_ = nullptr;  // owned; freed in its close callback
};

}  // namespace dp
