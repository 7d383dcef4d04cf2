// A first batch bigger than a segment replaces the empty segment under the
// same name; the log must track it once, so a later drop_below() (after a
// checkpoint) deletes each file once and the log stays healthy.
#include <doctest/doctest.h>

#include "log_test_util.h"

using namespace dp::log;
using namespace dp::log::test;

TEST_CASE("an oversized first batch followed by drop_below keeps the log healthy") {
  FakeFileSystem fs;
  auto o = fake_options(&fs, 4096);
  auto log = open_log(o);
  REQUIRE(log);
  log->reset("r", 0);
  const std::string big(10000, 'b');  // larger than one segment: needs a bigger one
  log->append(big);
  REQUIRE(wait_durable(*log, big.size()));
  for (int i = 0; i < 6; ++i) {  // a few normal segments after it
    log->append(std::string(1500, static_cast<char>('c' + i)));
    REQUIRE(wait_durable(*log, big.size() + 1500u * (i + 1)));
  }
  const uint64_t end = log->end_offset();
  log->drop_below(big.size() + 3000);
  log->append("x");
  REQUIRE(wait_durable(*log, end + 1));
  CHECK_MESSAGE(!log->failed(), log->failure_reason());
  CHECK(!fs.exists(seg_path(0)));
  std::string err;
  CHECK(read_all(&fs, big.size() + 3000, end + 1, &err).size() == end + 1 - (big.size() + 3000));
  CHECK(err == "");
}
