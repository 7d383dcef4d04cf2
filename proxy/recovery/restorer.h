// One restore of an upstream that lost data (DESIGN.md §6 step 3): the
// proxy briefly plays primary and Valkey replays the checkpoint and the log
// itself, at replica speed.
//
//   CONFIG GET masterauth ─▶ CONFIG SET masterauth <one-time password>
//     ─▶ repl-diskless-load disabled? CONFIG SET repl-diskless-load on-empty-db
//     ─▶ listen (recovery.restore_listen) ─▶ REPLICAOF <listen address>
//     ─▶ [RestorePrimary: +FULLRESYNC <replid> <C>, checkpoint RDB, log (C, E]]
//     ─▶ poll INFO until master_repl_offset == E ─▶ REPLICAOF NO ONE
//     ─▶ CONFIG SET repl-diskless-load / masterauth <previous values> ─▶ done(ok)
//
// After done(ok) the upstream holds replid R as replid2 up to offset E, so
// the owner resumes its replica link with PSYNC R E+1 (+CONTINUE).  On
// failure the restorer undoes what it can (REPLICAOF NO ONE, masterauth)
// and reports a reason that names the step and the address; the owner
// retries with backoff.
//
// A log that ends inside a command (the upstream died mid-propagation)
// cannot be replayed to its last byte: the replica stops at the last whole
// command.  When everything is sent, the replica is idle and its offset has
// not moved for `partial_tail_ms`, the restore ends there (those bytes were
// never acknowledged) and done() reports the offset reached; the owner's
// PSYNC at E+1 then gets a FULLRESYNC, i.e. a new checkpoint.
//
// Threads: loop thread only.  Ownership: the ControlLink must outlive the
// restorer; the destructor requires a completed close().  `done` runs at
// most once and never after close().
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "proxy/base/lifecycle.h"
#include "proxy/upstream/control_link.h"
#include "proxy/recovery/restore_primary.h"

namespace dp {

struct RestoreOptions {
  std::string listen_host = "127.0.0.1";  // recovery.restore_listen
  uint16_t listen_port = 0;
  std::string log_dir;             // segment files
  std::string replid;              // the log's replid at its end
  uint64_t end_offset = 0;         // E: every byte up to it is durable
  std::string checkpoint_path;     // RDB of checkpoint C
  uint64_t checkpoint_offset = 0;  // C
  uint64_t checkpoint_bytes = 0;
  std::string upstream_name;       // "host:port" for messages
  uint32_t poll_ms = 20;               // INFO polls while the upstream catches up
  uint32_t progress_log_ms = 2000;
  uint32_t partial_tail_ms = 3000;
  uint32_t stall_timeout_ms = 300000;  // nothing moved at all for this long: fail
  uint32_t connect_timeout_ms = 30000; // the upstream did not connect to the listener: fail
  // status() after each progress log line (for -LOADING and /readyz); may be empty.
  std::function<void(const std::string&)> on_status;
};

struct RestoreResult {
  bool ok = false;
  std::string error;         // names the step and the address
  uint64_t reached = 0;      // upstream offset at REPLICAOF NO ONE
  uint64_t bytes_sent = 0;   // RDB + stream
  double seconds = 0;
};

// What the proxy drives during a restore: this REPLICAOF path, or the
// multi-part AOF path for cluster nodes (aof_restorer.h).
class RestoreJob {
 public:
  virtual ~RestoreJob() = default;
  virtual void start() = 0;
  // The control link to the upstream dropped: fail at once (no undo).
  virtual void abort(const std::string& why) = 0;
  virtual void close(std::function<void()> on_closed) = 0;  // idempotent
  // One line for -LOADING, /readyz and the log: phase and progress.
  virtual std::string status() const = 0;
  // After done(ok): true when the upstream holds the data under a history
  // of its own (a new log history follows), false when it continues the
  // log's replid (PSYNC continues).
  virtual bool new_history() const { return false; }

 protected:
  explicit RestoreJob(upstream::ControlLink* control) : control_(control) {}
  // A command on the control link whose answer is dropped once
  // forget_commands() ran (the job closed before the answer came).
  void command(const std::vector<std::string>& argv, std::function<void(const resp::Value*, const std::string&)> fn);
  void forget_commands() { alive_.reset(); }

  upstream::ControlLink* control_;

 private:
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // control callbacks check it
};

class Restorer : public RestoreJob, upstream::RestorePrimary::Source, upstream::RestorePrimary::Listener {
 public:
  using Done = std::function<void(const RestoreResult&)>;
  // Prefix of the one-time masterauth: marks a restore left unfinished.
  static constexpr std::string_view kPasswordPrefix = "dp-restore-";
  Restorer(uv_loop_t* loop, upstream::ControlLink* control, RestoreOptions opts, Done done);
  ~Restorer() override;
  Restorer(const Restorer&) = delete;
  Restorer& operator=(const Restorer&) = delete;

  void start() override;
  void abort(const std::string& why) override;
  void close(std::function<void()> on_closed) override;
  std::string status() const override;

 private:
  enum class Phase { idle, auth, replicaof, transfer, promote, done };

  // RestorePrimary::Source
  bool read(uint64_t offset, char* buf, size_t max, size_t* n, bool* end,
            std::string* error) override;
  // RestorePrimary::Listener
  void on_replica_connected(const std::string& peer) override;
  void on_progress(uint64_t rdb, uint64_t stream) override;
  void on_done(uint64_t end_offset) override;
  void on_failed(const std::string& reason) override;

  void get_masterauth();
  void set_masterauth();
  void load_from_socket();
  void open_listener();
  void send_replicaof();
  void poll();
  void on_poll_reply(const std::string& replication, const std::string& persistence);
  void promote(uint64_t reached);
  void restore_masterauth(std::function<void()> then);
  void fail(const std::string& why, bool undo);
  void finish(bool ok, const std::string& error);
  void log_progress(bool force);
  uint64_t total_bytes() const;
  uint64_t now_ms() const;

  uv_loop_t* loop_;
  RestoreOptions opts_;
  Done done_;

  Phase phase_ = Phase::idle;
  std::unique_ptr<upstream::RestorePrimary> primary_;
  uv_timer_t timer_{};
  bool timer_open_ = false;
  Lifecycle life_;
  int pending_closes_ = 0;

  std::string password_;          // one-time masterauth; empty: none could be set
  std::string previous_auth_;     // masterauth before the restore
  bool auth_changed_ = false;
  bool diskless_changed_ = false; // repl-diskless-load was "disabled", set to on-empty-db
  bool replicaof_sent_ = false;
  std::string listen_address_;    // host:port the upstream was told

  // Source: a window of log bytes read from disk.
  std::string window_;
  uint64_t window_first_ = 0;     // stream byte number of window_[0]
  size_t window_pos_ = 0;

  uint64_t started_ms_ = 0;
  uint64_t last_log_ms_ = 0;
  uint64_t last_move_ms_ = 0;     // bytes sent or upstream offset moved
  uint64_t rdb_sent_ = 0, stream_sent_ = 0;
  bool all_sent_ = false;
  uint64_t upstream_offset_ = 0;
  uint64_t offset_moved_ms_ = 0;
  bool upstream_idle_ = false;    // link up, no sync in progress, not loading
  bool polling_ = false;
  bool replica_connected_ = false;
  uint64_t replicaof_ms_ = 0;
};

}  // namespace dp
