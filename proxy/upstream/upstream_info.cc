#include "proxy/upstream/upstream_info.h"

#include <charconv>
#include <sstream>

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
  std::istringstream in(replication);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t colon = line.find(':');
    if (colon == std::string::npos || line[0] == '#') continue;
    std::string_view k(line.data(), colon), v(line.data() + colon + 1, line.size() - colon - 1);
    if (k == "role") info.role = v, info.parsed = true;
    else if (k == "master_replid") info.replid = v;
    else if (k == "master_replid2") info.replid2 = v;
    else if (k == "master_repl_offset") info.offset = to_u64(v);
    else if (k == "second_repl_offset") info.second_offset = v == "-1" ? 0 : to_u64(v);
    else if (k == "master_host") info.master_host = v;
  }
  std::istringstream ks(keyspace);
  while (std::getline(ks, line)) {
    // db0:keys=3,expires=0,avg_ttl=0
    if (line.rfind("db", 0) != 0) continue;
    size_t p = line.find("keys=");
    if (p == std::string::npos) continue;
    size_t e = line.find(',', p);
    info.keys += to_u64(std::string_view(line).substr(p + 5, e == std::string::npos ? std::string::npos : e - p - 5));
  }
  return info;
}

}  // namespace dp::upstream
