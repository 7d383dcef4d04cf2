// What the upstream says about its history (INFO replication + cluster,
// and keyspace),
// and the recovery decision taken from it (DESIGN.md §6).  Pure: no I/O.
#pragma once

#include <cstdint>
#include <string>

#include "config/config.h"

namespace dp::upstream {

struct UpstreamInfo {
  bool parsed = false;
  std::string role;            // master | slave
  std::string replid, replid2;
  uint64_t offset = 0;         // master_repl_offset
  uint64_t second_offset = 0;  // second_repl_offset (-1 → 0)
  uint64_t keys = 0;           // sum of dbN:keys=
  std::string master_host;     // when role == slave
  bool cluster_enabled = false;  // cluster_enabled:1 (INFO cluster): a Valkey Cluster node
};

UpstreamInfo parse_upstream_info(const std::string& replication, const std::string& keyspace);

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
};

RecoveryPlan plan_recovery(const std::string& log_replid, uint64_t log_end, const UpstreamInfo& up,
                           config::OnUnknownDataset on_unknown);

}  // namespace dp::upstream
