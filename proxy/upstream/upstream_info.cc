#include "proxy/upstream/upstream_info.h"

#include <charconv>

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
    else if (k == "run_id") info.run_id = v;
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

}  // namespace dp::upstream
