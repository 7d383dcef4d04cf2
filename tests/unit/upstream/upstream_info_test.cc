#include <doctest/doctest.h>

#include "proxy/upstream/upstream_info.h"

using namespace dp::upstream;

namespace {
UpstreamInfo info(const char* replid, uint64_t off, const char* replid2, uint64_t second, uint64_t keys) {
  std::string repl = std::string("# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_replid:") + replid +
                     "\r\nmaster_replid2:" + replid2 + "\r\nmaster_repl_offset:" + std::to_string(off) +
                     "\r\nsecond_repl_offset:" + (second ? std::to_string(second) : "-1") + "\r\n";
  std::string ks = "# Keyspace\r\n";
  if (keys) ks += "db0:keys=" + std::to_string(keys - 1) + ",expires=0,avg_ttl=0\r\ndb3:keys=1,expires=1,avg_ttl=5\r\n";
  return parse_upstream_info(repl, ks);
}
const char* kA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const char* kB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
}  // namespace

TEST_CASE("INFO replication and keyspace are parsed") {
  UpstreamInfo u = info(kA, 1234, kB, 99, 5);
  CHECK(u.parsed);
  CHECK(u.role == "master");
  CHECK(u.replid == kA);
  CHECK(u.replid2 == kB);
  CHECK(u.offset == 1234);
  CHECK(u.second_offset == 99);
  CHECK(u.keys == 5);
}
