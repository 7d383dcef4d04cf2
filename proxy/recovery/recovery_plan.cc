#include "proxy/recovery/recovery_plan.h"

#include <sstream>

namespace dp::recovery {

using upstream::UpstreamInfo;

namespace {
RecoveryPlan plan(const std::string& ours, uint64_t end, const UpstreamInfo& up, config::OnUnknownDataset on_unknown,
                  bool aof_restored) {
  RecoveryPlan p;
  p.cluster = up.cluster_enabled;
  std::ostringstream why;
  auto with_up = [&] {
    why << " (upstream: replid " << (up.replid.empty() ? "?" : up.replid) << " offset " << up.offset
        << ", replid2 " << (up.replid2.empty() ? "?" : up.replid2) << " until " << up.second_offset << ", "
        << up.keys << " keys)";
  };
  if (ours.empty()) {
    p.action = RecoveryAction::fresh;
    why << "the log is empty: taking a first checkpoint from the upstream";
    with_up();
    p.explanation = why.str();
    return p;
  }
  bool same = up.replid == ours && up.offset >= end;
  // replid2 is valid up to second_repl_offset-1: the history switched there.
  bool previous = !up.replid2.empty() && up.replid2 == ours && end + 1 <= up.second_offset &&
                  up.offset >= end;
  if (same || previous) {
    p.action = RecoveryAction::resume;
    why << "upstream still holds the log's history (replid " << ours << ", log ends at " << end
        << "): continuing the stream";
    with_up();
    p.explanation = why.str();
    return p;
  }
  // A cluster replica's data is its primary's: CLUSTER REPLICATE (cluster
  // creation, a failover that demoted it) replaced it by a full sync, and
  // the primary's own proxy logs the writes it acknowledged.  A cluster node
  // refuses REPLICAOF, so there is nothing to restore into it either: the
  // log follows the node's new history (proxy/upstream/COMPATIBILITY.md §6).
  if (up.cluster_enabled && up.role == "slave") {
    p.action = RecoveryAction::adopt;
    why << "upstream is a cluster replica (of " << (up.master_host.empty() ? "?" : up.master_host)
        << ") without the log's history (log replid " << ours << " ends at " << end
        << "): its data is its primary's, whose proxy logs the writes it acknowledged; starting a new log from "
           "the node's stream";
    with_up();
    p.explanation = why.str();
    return p;
  }
  // A cluster node this proxy restored by DEBUG LOADAOF (the same process:
  // its run_id is in the marker) before it could take the node's data as
  // its new history: the keys are the log's, take them.
  if (up.cluster_enabled && aof_restored && up.keys > 0 && up.role == "master") {
    p.action = RecoveryAction::adopt;
    p.resync_replicas = true;  // the restore may have stopped before it made them resync
    why << "upstream is the cluster node this proxy restored from the log (log replid " << ours << " ends at "
        << end << "; run_id " << up.run_id << " in " << "the log's aof-restore marker): its data is the log's; "
        << "starting the new log history from it";
    with_up();
    p.explanation = why.str();
    return p;
  }
  // A prefix of the log's own history: an interrupted restore (our replid
  // at an older offset), or the upstream restarted from an older snapshot of
  // ours (a SAVE made through the proxy, then a crash): it loaded our replid
  // as replid2, valid up to second_repl_offset-1, which is below the log end.
  // The log holds everything it has and more.
  bool prefix_same = up.replid == ours && up.offset < end;
  bool prefix_previous = !up.replid2.empty() && up.replid2 == ours && up.second_offset > 0 &&
                         up.second_offset <= end;
  if (prefix_same || prefix_previous) {
    p.action = RecoveryAction::restore;
    uint64_t held = prefix_same ? up.offset : up.second_offset - 1;
    why << "upstream holds an older part of the log's history (replid " << ours << " up to offset " << held
        << (prefix_previous ? ", as its replid2: restarted from an older snapshot" : "") << "; log ends at " << end
        << "): restoring it from the checkpoint and log";
    with_up();
    p.explanation = why.str();
    return p;
  }
  if (up.keys == 0) {
    p.action = RecoveryAction::restore;
    why << "upstream lost data (log replid " << ours << " ends at " << end
        << "; the upstream does not have it) and holds no keys: restoring it from the checkpoint and log";
    with_up();
    p.explanation = why.str();
    return p;
  }
  why << "upstream holds " << up.keys << " keys from another history (log replid " << ours << " ends at " << end
      << ")";
  with_up();
  switch (on_unknown) {
    case config::OnUnknownDataset::refuse:
      p.action = RecoveryAction::refuse;
      why << ". Refusing to serve: recovery.on_unknown_dataset is 'refuse'. Set it to 'restore' to overwrite the "
             "upstream with the log's data, or 'adopt' to keep the upstream's data and start a new log from it "
             "(the log's unrestored writes are then lost)";
      // Seen in the cluster soak: a node that was once a replica kept the
      // snapshot of its last full sync and loaded it at its restart.
      if (up.cluster_enabled)
        why << ". A cluster node that was ever a replica keeps the snapshot of its last full sync (its dbfilename, "
               "dump.rdb) and loads that at its next start unless rdb-del-sync-files is yes (deploy/valkey.conf): "
               "if it restarted, that file is the likely source of these keys";
      break;
    case config::OnUnknownDataset::restore:
      p.action = RecoveryAction::restore;
      why << "; recovery.on_unknown_dataset is 'restore': overwriting it with the log's data";
      break;
    case config::OnUnknownDataset::adopt:
      p.action = RecoveryAction::adopt;
      why << "; recovery.on_unknown_dataset is 'adopt': starting a new log from the upstream's data";
      break;
  }
  p.explanation = why.str();
  return p;
}
}  // namespace

RecoveryPlan plan_recovery(const std::string& ours, uint64_t end, const UpstreamInfo& up,
                           config::OnUnknownDataset on_unknown, bool aof_restored, const std::string& log_node_id) {
  RecoveryPlan p = plan(ours, end, up, on_unknown, aof_restored);
  if (p.action == RecoveryAction::restore && up.cluster_enabled && !log_node_id.empty() && !up.node_id.empty() &&
      up.node_id != log_node_id) {
    p.action = RecoveryAction::refuse;
    p.explanation = "upstream is cluster node " + up.node_id + ", not node " + log_node_id +
                    " whose data the log holds: it lost nodes.conf and is a new node that owns none of the log's "
                    "slots, so restoring into it would make keys of slots it does not serve. Refusing. Join it to "
                    "the cluster as a replica (CLUSTER MEET, CLUSTER REPLICATE, sent to the node itself: this proxy "
                    "then follows it) and forget node " + log_node_id + "; or give it node " + log_node_id +
                    "'s slots (valkey-cli --cluster fix) and remove the log's cluster-node-id file to restore. (" +
                    p.explanation + ")";
  }
  return p;
}

}  // namespace dp::recovery
