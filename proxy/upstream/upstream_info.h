// What the upstream says about its history (INFO replication + cluster,
// and keyspace).  The recovery decision taken from it:
// proxy/recovery/recovery_plan.h.  Pure: no I/O.
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
  std::string run_id;          // INFO server: this server process
  std::string node_id;         // CLUSTER MYID (cluster nodes; empty if refused)
};

UpstreamInfo parse_upstream_info(const std::string& replication, const std::string& keyspace);

}  // namespace dp::upstream
