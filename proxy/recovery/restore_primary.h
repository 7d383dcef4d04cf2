// Restore by playing primary (DESIGN §6 step 3): a tiny primary that an
// empty upstream is told to `REPLICAOF`.  It accepts ONE replica connection,
// answers its handshake, replies to PSYNC with
// `+FULLRESYNC <replid> <checkpoint offset>`, sends the checkpoint RDB as
// `$<len>\r\n<bytes>` (or a valid empty RDB when there is no checkpoint) and
// then the log bytes after the checkpoint, unchanged, pulled from a Source.
// The replica replays them itself, so its master_repl_offset ends at
// checkpoint offset + stream bytes.
//
//   accept ─▶ PING:+PONG  AUTH:+OK|-WRONGPASS  REPLCONF:+OK  (REPLCONF ACK: no reply)
//          ─▶ PSYNC ─▶ +FULLRESYNC ─▶ $len RDB ─▶ stream ... ─▶ on_done
//          ─▶ (connection kept open: the owner sends the upstream REPLICAOF NO ONE)
//
// Backpressure: at most `max_queued_bytes` (+ one chunk) are handed to the
// socket and not yet written; the RDB file and the Source are read only as
// the socket drains.  After the last byte nothing else is sent: no PING
// and no newline keep-alive, since either would move the replica's offset
// past the log end.  So the owner must end the restore (REPLICAOF NO ONE)
// within the replica's repl-timeout (60 s by default).
//
// Threads: loop thread only.  Ownership: the Source and Listener must
// outlive the object until close()'s callback; the destructor requires a
// completed close().  After close() the listener is never called.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/base/lifecycle.h"
#include "proxy/resp/request_parser.h"

namespace dp::upstream {

struct RestorePrimaryOptions {
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 0;        // 0: any free port, see port()
  std::string password;            // one-time password the replica must AUTH with; empty = none
  std::string replid;              // 40 characters: the log's history
  uint64_t checkpoint_offset = 0;  // the RDB holds every stream byte up to this one
  std::string rdb_path;            // checkpoint RDB file; empty = send an empty RDB
  size_t chunk_bytes = 64 * 1024;
  size_t max_queued_bytes = 4 * 1024 * 1024;
};

// A valid empty RDB: "REDIS0009", the EOF opcode and a zero checksum (a zero
// checksum means "saved without checksum" and is accepted by every loader).
// Version 9 is readable by Redis >= 5 and every Valkey.
std::string_view empty_rdb();

class RestorePrimary {
 public:
  // Log bytes after the checkpoint, in order.
  struct Source {
    virtual ~Source() = default;
    // Copies up to `max` stream bytes, starting at stream byte `offset`
    // (the first call asks for checkpoint_offset + 1), into `buf` and sets
    // *n.  *n == 0 and *end: the log ends here, the restore is complete.
    // *n == 0 and !*end: nothing yet, the owner calls wake() later.
    // Returns false with *error (naming file and offset) on a read failure.
    virtual bool read(uint64_t offset, char* buf, size_t max, size_t* n, bool* end,
                      std::string* error) = 0;
  };
  struct Listener {
    virtual ~Listener() = default;
    virtual void on_replica_connected(const std::string& peer) { (void)peer; }
    virtual void on_progress(uint64_t rdb_bytes_sent, uint64_t stream_bytes_sent) {
      (void)rdb_bytes_sent, (void)stream_bytes_sent;
    }
    // REPLCONF ACK from the replica: the offset it has processed.
    virtual void on_replica_ack(uint64_t offset) { (void)offset; }
    // Every byte up to `end_offset` is written to the socket.
    virtual void on_done(uint64_t end_offset) = 0;
    // The restore cannot go on; `reason` names the cause and place.
    virtual void on_failed(const std::string& reason) = 0;
  };

  RestorePrimary(uv_loop_t* loop, RestorePrimaryOptions opts, Source* source, Listener* listener);
  ~RestorePrimary();
  RestorePrimary(const RestorePrimary&) = delete;
  RestorePrimary& operator=(const RestorePrimary&) = delete;

  // Binds and listens.  Returns false with *error naming the address.
  bool listen(std::string* error);
  uint16_t port() const { return bound_port_; }
  void wake();  // the Source has more bytes
  void close(std::function<void()> on_closed);  // idempotent

  uint64_t rdb_bytes_sent() const { return rdb_sent_; }
  uint64_t stream_bytes_sent() const { return stream_sent_; }
  uint64_t replica_ack() const { return replica_ack_; }
  size_t max_queued_seen() const { return max_queued_seen_; }  // backpressure check for tests
  bool done() const { return phase_ == Phase::done; }

 private:
  enum class Phase { waiting, handshake, rdb, stream, done, failed };
  struct WriteReq;

  void on_accept();
  void on_read(const char* data, size_t n);
  bool handle_command(const std::vector<std::string_view>& argv);  // views into in_
  void begin_full_sync();
  void pump();
  void write(std::string data, bool counts_as_rdb);
  void fail(const std::string& why);
  void reply_simple(std::string_view s);  // +s\r\n
  void reply_error(std::string_view msg);  // -msg\r\n
  void maybe_finish_close();
  std::string where() const;

  uv_loop_t* loop_;
  RestorePrimaryOptions opts_;
  Source* source_;
  Listener* listener_;

  uv_tcp_t server_{};
  uv_tcp_t client_{};
  bool server_open_ = false, client_open_ = false;
  Lifecycle life_;
  int pending_closes_ = 0;

  Phase phase_ = Phase::waiting;
  uint16_t bound_port_ = 0;
  bool authed_ = false;
  std::string in_;  // replica input not yet parsed
  resp::RequestParser parser_;  // the one RESP request parser (proxy/resp)
  resp::Request request_;
  int rdb_fd_ = -1;
  uint64_t rdb_left_ = 0;
  size_t empty_rdb_pos_ = 0;
  bool use_empty_rdb_ = false;
  uint64_t next_offset_ = 0;  // next stream byte to send
  size_t queued_ = 0;
  size_t max_queued_seen_ = 0;
  uint64_t rdb_sent_ = 0, stream_sent_ = 0, replica_ack_ = 0;
  bool source_ended_ = false;
  bool pumping_ = false;
  std::string peer_;
};

}  // namespace dp::upstream
