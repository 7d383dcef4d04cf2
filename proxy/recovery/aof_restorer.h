// Restore into a Valkey Cluster primary, which refuses REPLICAOF ("not
// allowed in cluster mode"), so the Restorer's path cannot work there
// (design and the paths weighed: CLUSTER_RESTORE.md).  The proxy writes a
// multi-part AOF into the node's data directory, which the sidecar shares,
// and the node loads it with DEBUG LOADAOF at its own load speed:
//
//   CONFIG GET appendonly dir appenddirname appendfilename
//     ─▶ [worker thread] <dir>/<appenddirname>/:
//          <appendfilename>.dp.base.rdb  = checkpoint C's RDB (copied)
//          <appendfilename>.dp.incr.aof  = log bytes (C, E], whole commands
//                                          only, PING / REPLCONF / CLUSTER
//                                          SETSLOT / CLUSTER SYNCSLOTS left out
//          <appendfilename>.manifest     = both, written last (temp, fsync, rename)
//     ─▶ INFO replication: still a primary?
//     ─▶ DEBUG LOADAOF (the node empties itself and loads both parts)
//     ─▶ the three files removed; the marker <log dir>/aof-restore (the
//        node's run_id) written and fsynced
//     ─▶ DEBUG CHANGE-REPL-ID, CLIENT KILL TYPE replica (replicas resync the
//        restored data) ─▶ done(ok)
//
// The node keeps its own replid and offset (DEBUG LOADAOF does not
// propagate), so the owner then takes the node's data as a new history
// (PSYNC ? -1; the old log goes only once the new checkpoint is durable).
// If the proxy stops before that, the marker tells the next decision that
// the node's keys are this restore's, whole (the same run_id; written only
// after +OK), not an unknown dataset; that adoption resyncs the replicas
// again (RecoveryPlan::resync_replicas).
//
// Needs: the node runs with `appendonly no` (its own AOF would be
// replaced), `enable-debug-command local` (or yes), no AOF manifest of its
// own in that directory, and the directory reachable by the proxy
// (recovery.node_data_dir when the sidecar mounts it elsewhere).
//
// Threads: loop thread; file work in libuv's pool (one job at a time).
// Ownership: the ControlLink must outlive the restorer; close() waits for a
// running file job.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "proxy/base/lifecycle.h"
#include "proxy/recovery/restorer.h"
#include "proxy/upstream/control_link.h"

namespace dp {

struct AofRestoreOptions {
  std::string log_dir;             // segment files
  uint64_t end_offset = 0;         // E: every byte up to it is durable
  std::string checkpoint_path;     // RDB of checkpoint C
  uint64_t checkpoint_offset = 0;  // C
  std::string node_data_dir;       // the node's `dir` as the proxy sees it ("" = as the node says)
  std::string node_run_id;         // INFO server run_id, written to the marker
  std::string upstream_name;       // "host:port" for messages
  std::function<void(const std::string&)> on_status;
};

// The marker's name in the log directory, and whether it names `run_id`.
constexpr const char* kAofRestoreMarker = "aof-restore";
// In the log directory: the cluster node id (CLUSTER MYID) the log follows.
constexpr const char* kClusterNodeIdFile = "cluster-node-id";
bool aof_restore_marked(const std::string& log_dir, const std::string& run_id);
// Replaces kClusterNodeIdFile with `node_id` (temp, fsync, rename, fsync of
// the directory): a crash leaves the old id or the new one, never none.
// "" or an error naming the file.
std::string write_cluster_node_id(const std::string& log_dir, const std::string& node_id);

class AofRestorer : public RestoreJob {
 public:
  using Done = std::function<void(const RestoreResult&)>;
  AofRestorer(uv_loop_t* loop, upstream::ControlLink* control, AofRestoreOptions opts, Done done);
  ~AofRestorer() override;
  AofRestorer(const AofRestorer&) = delete;
  AofRestorer& operator=(const AofRestorer&) = delete;

  void start() override;
  void abort(const std::string& why) override;
  void close(std::function<void()> on_closed) override;
  std::string status() const override;
  bool new_history() const override { return true; }

  // The file work, on any thread (unit-tested on its own): writes the
  // three files into `aof_dir` (created if missing); "" or an error naming
  // the file.  `stream_bytes` and `commands` report what the increment holds.
  struct Files {
    std::string dir, manifest, base, incr;
  };
  static Files files(const std::string& aof_dir, const std::string& appendfilename);
  static std::string write_aof(const Files& f, const std::string& checkpoint_path, const std::string& log_dir,
                               uint64_t from, uint64_t to, uint64_t* stream_bytes, uint64_t* commands);
  // Removes this restorer's files (the manifest only if it is ours).
  static void remove_aof(const Files& f);
  // The marker, written (and its directory fsynced) once DEBUG LOADAOF
  // answered +OK: this node process holds the log's data, whole.
  static std::string write_marker(const std::string& log_dir, const std::string& run_id);

 private:
  struct Job;
  static std::string write_parts(const Files& f, const std::string& checkpoint_path, const std::string& log_dir,
                                 uint64_t from, uint64_t to, uint64_t* stream_bytes, uint64_t* commands);
  void got_config(const resp::Value* r, const std::string& err);
  void run_job(std::function<std::string()> work, std::function<void(const std::string&)> after);
  void load();
  void resync_replicas();
  void fail(const std::string& why);
  void finish(bool ok, const std::string& error);

  uv_loop_t* loop_;
  AofRestoreOptions opts_;
  Done done_;
  Lifecycle life_;
  Files files_;
  bool job_running_ = false;
  bool files_written_ = false;
  bool loading_ = false;  // DEBUG LOADAOF in flight: the node reads the files
  std::string phase_ = "starting";
  uint64_t started_ms_ = 0;
  uint64_t stream_bytes_ = 0, commands_ = 0;
};

}  // namespace dp
