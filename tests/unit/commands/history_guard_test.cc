// proxy/commands/history_guard: which requests would move the upstream to
// another history (refused) and which forms keep its data (pass).
#include <doctest/doctest.h>

#include <string_view>
#include <vector>

#include "proxy/commands/history_guard.h"

using dp::commands::history_refusal;

namespace {
bool refused(std::vector<std::string_view> args) { return !history_refusal(args).empty(); }
}  // namespace

TEST_CASE("history changes are refused, case-insensitively") {
  CHECK(refused({"REPLICAOF", "10.0.0.1", "6379"}));
  CHECK(refused({"slaveof", "h", "1"}));
  CHECK(refused({"ReplicaOf", "no", "onex"}));
  CHECK(refused({"FAILOVER"}));
  CHECK(refused({"failover", "to", "h", "1", "force"}));
  CHECK(refused({"CLUSTER", "failover", "takeover"}));
  CHECK(refused({"cluster", "REPLICATE", "abc"}));
  CHECK(refused({"cluster", "reset", "hard"}));
  CHECK(refused({"DEBUG", "reload", "nosave"}));
  CHECK(refused({"debug", "RELOAD", "MERGE"}));
  CHECK(refused({"debug", "loadaof"}));
  CHECK(refused({"DEBUG", "change-repl-id"}));
  CHECK(refused({"debug", "Populate", "100"}));
  CHECK(refused({"DEBUG", "REPLICATE", "SET", "k", "v"}));
}

TEST_CASE("forms that keep the data, and everything else, pass") {
  CHECK_FALSE(refused({"REPLICAOF", "NO", "ONE"}));
  CHECK_FALSE(refused({"slaveof", "no", "one"}));
  CHECK_FALSE(refused({"FAILOVER", "ABORT"}));
  CHECK_FALSE(refused({"DEBUG", "RELOAD"}));
  CHECK_FALSE(refused({"DEBUG", "SLEEP", "0"}));
  CHECK_FALSE(refused({"CLUSTER", "INFO"}));
  CHECK_FALSE(refused({"FLUSHALL"}));
  CHECK_FALSE(refused({"SET", "replicaof", "x"}));
  CHECK_FALSE(refused({}));
}
