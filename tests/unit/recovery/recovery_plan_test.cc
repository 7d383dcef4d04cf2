// The recovery decision (proxy/recovery/recovery_plan.h) for each kind of
// upstream, from what its INFO would say.
#include "proxy/recovery/recovery_plan.h"

#include <doctest/doctest.h>

using namespace dp::recovery;
using dp::config::OnUnknownDataset;
using dp::upstream::UpstreamInfo;

namespace {
// An upstream as INFO replication + keyspace describe it (a master).
UpstreamInfo info(const char* replid, uint64_t off, const char* replid2, uint64_t second, uint64_t keys) {
  UpstreamInfo u;
  u.parsed = true;
  u.role = "master";
  u.replid = replid;
  u.replid2 = replid2;
  u.offset = off;
  u.second_offset = second;
  u.keys = keys;
  return u;
}
const char* kA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const char* kB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const char* kZero = "0000000000000000000000000000000000000000";
}  // namespace

TEST_CASE("an empty log takes a first checkpoint") {
  CHECK(plan_recovery("", 0, info(kA, 10, kZero, 0, 3), OnUnknownDataset::refuse).action == RecoveryAction::fresh);
}

TEST_CASE("same history at or past the log end resumes") {
  CHECK(plan_recovery(kA, 100, info(kA, 100, kZero, 0, 3), OnUnknownDataset::refuse).action ==
        RecoveryAction::resume);
  CHECK(plan_recovery(kA, 100, info(kA, 150, kZero, 0, 3), OnUnknownDataset::refuse).action ==
        RecoveryAction::resume);
}

TEST_CASE("our history as replid2 resumes only if the switch came after the log end") {
  // After a restore + REPLICAOF NO ONE the upstream keeps our replid as replid2.
  CHECK(plan_recovery(kA, 100, info(kB, 120, kA, 101, 3), OnUnknownDataset::refuse).action ==
        RecoveryAction::resume);
  CHECK(plan_recovery(kA, 100, info(kB, 120, kA, 50, 3), OnUnknownDataset::refuse).action !=
        RecoveryAction::resume);
}

TEST_CASE("an upstream that lost data and is empty is restored") {
  RecoveryPlan p = plan_recovery(kA, 100, info(kB, 0, kZero, 0, 0), OnUnknownDataset::refuse);
  CHECK(p.action == RecoveryAction::restore);
  CHECK(p.explanation.find("lost data") != std::string::npos);
  // Same replid but behind the log end (the upstream restarted from an old RDB).
  CHECK(plan_recovery(kA, 100, info(kA, 60, kZero, 0, 0), OnUnknownDataset::refuse).action ==
        RecoveryAction::restore);
}

TEST_CASE("an unknown dataset follows recovery.on_unknown_dataset, refusing by default with the choices named") {
  RecoveryPlan p = plan_recovery(kA, 100, info(kB, 10, kZero, 0, 7), OnUnknownDataset::refuse);
  CHECK(p.action == RecoveryAction::refuse);
  CHECK(p.explanation.find("7 keys") != std::string::npos);
  CHECK(p.explanation.find("'restore'") != std::string::npos);
  CHECK(p.explanation.find("'adopt'") != std::string::npos);
  CHECK(plan_recovery(kA, 100, info(kB, 10, kZero, 0, 7), OnUnknownDataset::restore).action ==
        RecoveryAction::restore);
  CHECK(plan_recovery(kA, 100, info(kB, 10, kZero, 0, 7), OnUnknownDataset::adopt).action == RecoveryAction::adopt);
  // A cluster node: the refusal names the stale sync file it may have loaded.
  CHECK(p.explanation.find("rdb-del-sync-files") == std::string::npos);
  UpstreamInfo u = info(kB, 10, kZero, 0, 7);
  u.cluster_enabled = true;
  CHECK(plan_recovery(kA, 100, u, OnUnknownDataset::refuse).explanation.find("rdb-del-sync-files is yes") !=
        std::string::npos);
}

TEST_CASE("an upstream holding an older part of our own history is restored even with keys") {
  // A restore interrupted after +FULLRESYNC (the proxy died): the upstream
  // replicated part of the log under our replid.
  RecoveryPlan p = plan_recovery(kA, 100, info(kA, 60, kZero, 0, 7), OnUnknownDataset::refuse);
  CHECK(p.action == RecoveryAction::restore);
  CHECK(p.explanation.find("older part of the log's history") != std::string::npos);
}

TEST_CASE("an upstream restarted from an older snapshot of ours (our replid as replid2, below the log end) is restored") {
  // SAVE at offset 119 through the proxy, kill -9, restart on the same dir:
  // new replid, replid2 = ours valid up to 119, 1 key; the log ends at 152.
  RecoveryPlan p = plan_recovery(kA, 152, info(kB, 119, kA, 120, 1), OnUnknownDataset::refuse);
  CHECK(p.action == RecoveryAction::restore);
  CHECK(p.explanation.find("older snapshot") != std::string::npos);
  // The switch exactly after the log end is still a resume.
  CHECK(plan_recovery(kA, 152, info(kB, 200, kA, 153, 1), OnUnknownDataset::refuse).action ==
        RecoveryAction::resume);
}

TEST_CASE("a cluster replica without the log's history is adopted, not restored") {
  // CLUSTER REPLICATE replaced the node's data by its primary's (a new
  // replid, no keys yet); a cluster node refuses REPLICAOF.
  std::string repl = std::string("# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:7001\r\n") +
                     "master_replid:" + kB + "\r\nmaster_replid2:" + kZero +
                     "\r\nmaster_repl_offset:70\r\nsecond_repl_offset:-1\r\n\r\n# Cluster\r\ncluster_enabled:1\r\n";
  UpstreamInfo u = dp::upstream::parse_upstream_info(repl, "# Keyspace\r\n");
  CHECK(u.cluster_enabled);
  RecoveryPlan p = plan_recovery(kA, 0, u, OnUnknownDataset::refuse);
  CHECK(p.action == RecoveryAction::adopt);
  CHECK(p.explanation.find("cluster replica") != std::string::npos);
  // Still following the log's history: resumed as any upstream.
  CHECK(plan_recovery(kB, 70, u, OnUnknownDataset::refuse).action == RecoveryAction::resume);
  // The same replica outside cluster mode: today's standalone decision.
  UpstreamInfo standalone =
      dp::upstream::parse_upstream_info(repl.substr(0, repl.find("# Cluster")), "# Keyspace\r\n");
  CHECK_FALSE(standalone.cluster_enabled);
  CHECK(plan_recovery(kA, 0, standalone, OnUnknownDataset::refuse).action == RecoveryAction::restore);
}

TEST_CASE("a cluster primary that came back empty is restored, by the cluster (AOF) path") {
  UpstreamInfo u = info(kB, 0, kZero, 0, 0);
  u.cluster_enabled = true;
  RecoveryPlan p = plan_recovery(kA, 100, u, OnUnknownDataset::refuse);
  CHECK(p.action == RecoveryAction::restore);
  CHECK(p.cluster);
  CHECK_FALSE(plan_recovery(kA, 100, info(kB, 0, kZero, 0, 0), OnUnknownDataset::refuse).cluster);
}

TEST_CASE("a cluster node holding the keys of this proxy's own AOF restore is adopted, never refused") {
  UpstreamInfo u = info(kB, 0, kZero, 0, 5);
  u.cluster_enabled = true;
  u.run_id = "r1";
  // Without the marker: another dataset, refused (on_unknown_dataset refuse).
  CHECK(plan_recovery(kA, 100, u, OnUnknownDataset::refuse).action == RecoveryAction::refuse);
  RecoveryPlan p = plan_recovery(kA, 100, u, OnUnknownDataset::refuse, /*aof_restored=*/true);
  CHECK(p.action == RecoveryAction::adopt);
  CHECK(p.resync_replicas);  // the stopped restore may not have made them resync
  CHECK(p.explanation.find("restored") != std::string::npos);
  // A standalone server is never adopted on the marker's word.
  UpstreamInfo s = info(kB, 0, kZero, 0, 5);
  CHECK(plan_recovery(kA, 100, s, OnUnknownDataset::refuse, true).action == RecoveryAction::refuse);
}

TEST_CASE("a cluster node with another id than the log's (it lost nodes.conf) is never restored into") {
  UpstreamInfo u = info(kB, 0, kZero, 0, 0);
  u.cluster_enabled = true;
  u.node_id = "new-node";
  RecoveryPlan p = plan_recovery(kA, 100, u, OnUnknownDataset::refuse, false, "old-node");
  CHECK(p.action == RecoveryAction::refuse);
  CHECK(p.explanation.find("old-node") != std::string::npos);
  CHECK(p.explanation.find("nodes.conf") != std::string::npos);
  // The same node (nodes.conf kept), or no id known on either side: restored.
  CHECK(plan_recovery(kA, 100, u, OnUnknownDataset::refuse, false, "new-node").action == RecoveryAction::restore);
  CHECK(plan_recovery(kA, 100, u, OnUnknownDataset::refuse, false, "").action == RecoveryAction::restore);
  u.node_id.clear();
  CHECK(plan_recovery(kA, 100, u, OnUnknownDataset::refuse, false, "old-node").action == RecoveryAction::restore);
}
