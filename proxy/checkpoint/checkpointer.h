// Checkpoints on a second replica connection (DESIGN.md §5).  A checkpoint
// is the upstream's own snapshot: `PSYNC ? -1` on a connection of its own
// gets `+FULLRESYNC <replid> <C>` and an RDB whose state is that after
// stream byte C.  The RDB goes to the CheckpointStore as checkpoint C; the
// connection is closed as soon as the RDB is complete (the stream after it is
// already logged by the main replica link).  Then segments wholly below C
// are deleted and the previous checkpoint is pruned.  Client traffic never
// waits for any of it: the RDB's offset places it in the log.
//
//   trigger ─▶ connect ─▶ PSYNC ? -1 ─▶ +FULLRESYNC R C ─▶ RDB chunks ─▶ (pool) temp file
//     ─▶ RDB complete: close the connection
//     ─▶ wait until the log is durable up to C (same replid R, C >= log start)
//        and the proxy is ready (never while a restore reads the store)
//     ─▶ (pool) fsync, rename, fsync dir, MANIFEST, prune older checkpoints
//     ─▶ (loop) DurableLog::drop_below(C)
//
// Triggers: CheckpointPolicy (size, interval) from tick(), and request()
// (POST /checkpoint, `durable-proxy --checkpoint`).  One checkpoint at a time.
//
// Disk work: every write, fsync, rename and unlink of the checkpoint runs on
// libuv's thread pool, one job at a time (RDB bytes are handed over in
// chunks of `write_chunk_bytes`); the loop only copies received bytes into a
// buffer.  When more than `max_buffered_bytes` wait for the disk, the
// connection stops reading (the upstream buffers; the main link is not
// affected).  The store's temp file is created on the loop (one open()).
//
// The main replica link's full resync (the first checkpoint, or a new
// history) goes through the same pool path: the proxy hands its RDB over
// with begin_history() / history_data() / history_complete(); the bytes are
// written by the same pool jobs, the commit job (fsync, rename, fsync dir,
// MANIFEST, prune) runs on the pool, and then, on the loop, the log switches
// to the new history (DurableLog::reset(R, C)).  From the MANIFEST's switch
// on, recovery resets the log to (R, C) by itself (log/FORMAT.md "History
// switch"), so a crash between the commit and the reset loses nothing.  The
// loop never writes or fsyncs a checkpoint (checkpointer_history.cc).
// begin_history() drops a running checkpoint first, so the store has one
// user at a time.
//
// Threads: every method on the loop thread.  Ownership: the log, the store,
// the metrics and `ready` must outlive the checkpointer; close() and its
// callback must complete before the destructor (pool jobs and connections
// belong to the loop until then).
#pragma once

#include <uv.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "log/checkpoint_store.h"
#include "log/durable_log.h"
#include "proxy/checkpoint/checkpoint_policy.h"
#include "proxy/base/lifecycle.h"
#include "proxy/upstream/replica_link.h"

namespace dp {

namespace admin {
class Metrics;
}

struct CheckpointerOptions {
  upstream::ReplicaLinkOptions link;      // the upstream and the proxy's user (listening_port: not sent)
  CheckpointPolicyOptions policy;
  uint64_t log_wait_ms = 60000;           // the log must become durable up to C within this
  size_t write_chunk_bytes = 1u << 20;    // RDB bytes per pool write job
  size_t max_buffered_bytes = 64u << 20;  // RDB bytes waiting for the disk before reading pauses
};

class Checkpointer : private upstream::ReplicaLink::Listener {
 public:
  enum class Answer { started, busy, not_ready };
  // True when the proxy serves and its replica link streams; else false + why.
  using ReadyFn = std::function<bool(std::string* why)>;

  Checkpointer(uv_loop_t* loop, CheckpointerOptions opts, log::DurableLog* log,
               log::CheckpointStore* store, admin::Metrics* metrics, ReadyFn ready);
  ~Checkpointer() override;  // close() must have completed
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // A checkpoint on demand; `trigger` says who asked (for the log output).
  // *message tells what was started, or why not.
  Answer request(const std::string& trigger, std::string* message);
  // Automatic triggers and the wait for the log; call every ~100 ms.
  void tick();
  // Drops the running checkpoint (the temp file is removed, the previous
  // checkpoint stays) and waits for the pool job in flight.  Afterwards the
  // caller may use the store until the next tick()/request().
  void abandon(const std::string& why);
  bool running() const { return phase_ != Phase::idle || job_in_flight_; }

  // The main link's full resync.  `pause` / `resume` stop and restart the
  // main link's reading while more than max_buffered_bytes wait for the disk;
  // `done` runs once, on the loop, after the log switched (ok) or when the
  // switch failed (the log keeps its history; `error` names the step).  Not
  // after abandon() or close().
  struct HistoryResult {
    bool ok = false;
    bool at_commit = false;  // the failure was the commit's (the MANIFEST may name C)
    std::string error;
    std::string replid;
    uint64_t offset = 0, rdb_bytes = 0;
    double commit_seconds = 0;  // from history_complete() to the switch
  };
  struct HistoryHooks {
    std::function<void()> pause, resume;
    std::function<void(const HistoryResult&)> done;
  };
  // Drops a running checkpoint and creates the temp file (on the loop, one
  // open()); false with *error when it cannot be created.
  bool begin_history(const std::string& replid, uint64_t offset, HistoryHooks hooks, std::string* error);
  void history_data(std::string_view rdb_bytes);
  void history_complete();  // the RDB is whole: commit on the pool, then switch
  bool history_running() const { return kind_ == Kind::history; }
  // The commit job is queued or running: abandoning now would leave the
  // MANIFEST's choice unknown to the log, so the proxy lets it finish.
  bool history_committing() const { return kind_ == Kind::history && phase_ == Phase::committing; }
  uint64_t snapshot_offset() const { return offset_; }
  uint64_t snapshot_bytes() const { return rdb_bytes_; }
  std::string status_json() const;  // {"running":..,"phase":..,...}
  // Idempotent: abandons, closes connections, waits for pool jobs, then calls
  // on_closed (may be empty) on the loop.
  void close(std::function<void()> on_closed);

 private:
  enum class Phase { idle, connecting, receiving, waiting_log, committing };
  enum class Kind { checkpoint, history };  // a checkpoint of its own link, or the main link's resync
  struct Job;

  // ReplicaLink::Listener
  void on_full_resync(const std::string& replid, uint64_t offset) override;
  void on_rdb_data(std::string_view bytes) override;
  void on_rdb_done() override;
  void on_continue(const std::string& new_replid) override;
  void on_stream(std::string_view bytes, uint64_t first_offset) override;
  void on_state(upstream::LinkState state, const std::string& reason) override;

  void start(const std::string& trigger);
  void take_rdb(std::string_view bytes);  // buffers, pauses the source when too much waits
  void history_finished(bool ok, const std::string& why);
  void pump();             // hands buffered RDB bytes to the pool, or publishes
  void try_publish();
  void queue_job(bool commit, std::string data);
  static void run_job(uv_work_t* req);         // pool thread
  static void job_done(uv_work_t* req, int status);
  void finished();         // published: drop segments, metrics
  void fail(const std::string& why);
  void discard_writer();   // loop; no job may be in flight
  void retire_link();
  void reap_links();
  void maybe_finish_close();
  uint64_t log_bytes_since_checkpoint() const;
  static const char* phase_name(Phase p);

  uv_loop_t* loop_;
  CheckpointerOptions opts_;
  log::DurableLog* log_;
  log::CheckpointStore* store_;
  admin::Metrics* metrics_;
  ReadyFn ready_;
  CheckpointPolicy policy_;

  Phase phase_ = Phase::idle;
  Kind kind_ = Kind::checkpoint;
  HistoryHooks hooks_;         // kind_ == history
  uint64_t commit_started_ns_ = 0;
  std::unique_ptr<upstream::ReplicaLink> link_;
  struct Retired {
    std::unique_ptr<upstream::ReplicaLink> link;
    bool closed = false;
  };
  std::vector<std::unique_ptr<Retired>> retired_;  // closing; freed from reap_
  uv_timer_t reap_{};

  // the checkpoint being taken
  std::string trigger_;
  std::string replid_;
  uint64_t offset_ = 0;
  uint64_t rdb_bytes_ = 0;
  uint64_t started_ns_ = 0;
  uint64_t wait_deadline_ms_ = 0;
  std::string pending_;  // RDB bytes not yet handed to the pool
  bool rdb_done_ = false;
  bool paused_ = false;
  bool job_in_flight_ = false;

  // Shared with pool jobs: writer_ only under store_mu_; a job runs only if
  // its epoch is still epoch_ (checked under the mutex).
  std::mutex store_mu_;
  std::unique_ptr<log::CheckpointWriter> writer_;
  std::atomic<uint64_t> epoch_{0};

  // results (for /status)
  uint64_t completed_ = 0, failed_ = 0;
  uint64_t last_offset_ = 0, last_bytes_ = 0;
  double last_seconds_ = 0;
  std::string last_error_;

  Lifecycle life_;
  bool reap_open_ = true;
};

}  // namespace dp
