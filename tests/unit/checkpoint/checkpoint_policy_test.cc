#include "proxy/checkpoint/checkpoint_policy.h"

#include <doctest/doctest.h>

using dp::check_publish;
using dp::CheckpointPolicy;
using dp::CheckpointPolicyOptions;
using dp::PublishCheck;

namespace {

CheckpointPolicyOptions opts(uint64_t max_log_bytes, uint64_t interval_ms) {
  CheckpointPolicyOptions o;
  o.max_log_bytes = max_log_bytes;
  o.interval_ms = interval_ms;
  o.min_interval_bytes = 4096;
  o.retry_min_ms = 1000;
  o.retry_max_ms = 8000;
  return o;
}

}  // namespace

TEST_CASE("a checkpoint is due once the log since the last one passes max_log_bytes") {
  CheckpointPolicy p(opts(1 << 20, 0), 1000);
  CHECK(p.due(1000, 1 << 20).empty());
  std::string why = p.due(1000, (1 << 20) + 1);
  CHECK(why.find("checkpoint.max_log_bytes 1048576") != std::string::npos);
}

TEST_CASE("the interval trigger needs the time and some log growth, and restarts after a success") {
  CheckpointPolicy p(opts(1ull << 30, 60000), 0);
  CHECK(p.due(59999, 1 << 20).empty());      // not yet
  CHECK(p.due(60000, 4095).empty());         // keep-alive PINGs only
  CHECK(!p.due(60000, 4096).empty());
  p.succeeded(60000);
  CHECK(p.due(100000, 1 << 20).empty());     // the interval counts from the success
  CHECK(!p.due(120000, 1 << 20).empty());
}

TEST_CASE("interval 0 never triggers by time") {
  CheckpointPolicy p(opts(1ull << 30, 0), 0);
  CHECK(p.due(1ull << 40, 1 << 20).empty());
}

TEST_CASE("after failures automatic triggers back off, doubling up to the cap; a success clears it") {
  CheckpointPolicy p(opts(100, 0), 0);
  REQUIRE(!p.due(0, 1000).empty());
  p.failed(0);
  CHECK(p.due(999, 1000).empty());
  CHECK(!p.due(1000, 1000).empty());
  p.failed(1000);  // 2 s
  CHECK(p.retry_at_ms() == 3000);
  p.failed(3000);  // 4 s
  p.failed(7000);  // 8 s (cap)
  p.failed(15000); // still 8 s
  CHECK(p.retry_at_ms() == 23000);
  p.succeeded(16000);
  CHECK(p.retry_at_ms() == 0);
  CHECK(!p.due(16000, 1000).empty());
}

TEST_CASE("a finished checkpoint is published only for the log's history and at or below its durable end") {
  std::string why;
  CHECK(check_publish("r1", 500, "r1", 100, 800, &why) == PublishCheck::publish);
  CHECK(why.empty());
  CHECK(check_publish("r1", 800, "r1", 100, 800, &why) == PublishCheck::publish);
  CHECK(check_publish("r1", 100, "r1", 100, 800, &why) == PublishCheck::publish);

  CHECK(check_publish("r1", 900, "r1", 100, 800, &why) == PublishCheck::wait);
  CHECK(why.find("durable up to offset 900 (now 800)") != std::string::npos);

  CHECK(check_publish("other", 500, "r1", 100, 800, &why) == PublishCheck::discard);
  CHECK(why.find("another history") != std::string::npos);
  CHECK(why.find("other") != std::string::npos);

  CHECK(check_publish("r1", 50, "r1", 100, 800, &why) == PublishCheck::discard);
  CHECK(why.find("below the log's start 100") != std::string::npos);
}
