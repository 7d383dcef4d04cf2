#include "proxy/upstream/upstream_info.h"

#include <charconv>
#include <sstream>

#include "proxy/base/info_fields.h"

namespace dp::upstream {

namespace {
uint64_t to_u64(std::string_view s) {
  long long v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v < 0 ? 0 : static_cast<uint64_t>(v);
}
}  // namespace

UpstreamInfo parse_upstream_info(const std::string& replication, const std::string& keyspace) {
  UpstreamInfo info;
  for_each_info_field(replication, [&info](std::string_view k, std::string_view v) {
    if (k == "role") info.role = v, info.parsed = true;
    else if (k == "master_replid") info.replid = v;
    else if (k == "master_replid2") info.replid2 = v;
    else if (k == "master_repl_offset") info.offset = to_u64(v);
    else if (k == "second_repl_offset") info.second_offset = v == "-1" ? 0 : to_u64(v);
    else if (k == "master_host") info.master_host = v;
    else if (k == "cluster_enabled") info.cluster_enabled = v == "1";
  });
  for_each_info_field(keyspace, [&info](std::string_view k, std::string_view v) {
    // db0:keys=3,expires=0,avg_ttl=0
    if (k.substr(0, 2) != "db") return;
    size_t p = v.find("keys=");
    if (p == std::string_view::npos) return;
    size_t e = v.find(',', p);
    info.keys += to_u64(v.substr(p + 5, e == std::string_view::npos ? std::string_view::npos : e - p - 5));
  });
  return info;
}

RecoveryPlan plan_recovery(const std::string& ours, uint64_t end, const UpstreamInfo& up,
                           config::OnUnknownDataset on_unknown) {
  RecoveryPlan p;
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

}  // namespace dp::upstream
