// The recovery decision (DESIGN.md §6): what the proxy does with an upstream
// given the log's history and what the upstream says about its own.
// Pure: no I/O.
#pragma once

#include <cstdint>
#include <string>

#include "config/config.h"
#include "proxy/upstream/upstream_info.h"

namespace dp::recovery {

enum class RecoveryAction {
  fresh,    // the log is empty: first full sync becomes checkpoint 0
  resume,   // upstream still has our history at or beyond the log end: PSYNC continue
  restore,  // upstream lost data and is empty: replay checkpoint + log into it
  adopt,    // upstream holds another dataset; on_unknown_dataset=adopt, or a cluster
            // replica (its data is its primary's): new history
  refuse,   // upstream holds another dataset; on_unknown_dataset=refuse
};

struct RecoveryPlan {
  RecoveryAction action = RecoveryAction::refuse;
  std::string explanation;  // for the log and for -LOADING / readyz
  bool cluster = false;     // the upstream is a cluster node: restore by AOF (aof_restorer.h)
  bool resync_replicas = false;  // adopt: first DEBUG CHANGE-REPL-ID + CLIENT KILL TYPE replica
};

// `aof_restored`: this upstream process (its run_id) was given the log's
// data by a cluster restore whose new history is not durable yet.
// `log_node_id`: the cluster node id the log was last taken from (empty:
// none recorded); a restore into a node with another id (it lost
// nodes.conf: a new node, owning none of the log's slots) is refused.
RecoveryPlan plan_recovery(const std::string& log_replid, uint64_t log_end, const upstream::UpstreamInfo& up,
                           config::OnUnknownDataset on_unknown, bool aof_restored = false,
                           const std::string& log_node_id = "");

}  // namespace dp::recovery
