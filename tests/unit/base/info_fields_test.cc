// The one INFO reader: lines, section headers, line ends, missing fields.
#include <doctest/doctest.h>

#include <string>
#include <utility>
#include <vector>

#include "proxy/base/info_fields.h"

namespace {
using Fields = std::vector<std::pair<std::string, std::string>>;
Fields all_fields(std::string_view info) {
  Fields out;
  dp::for_each_info_field(info, [&](std::string_view k, std::string_view v) { out.emplace_back(k, v); });
  return out;
}
}  // namespace

TEST_CASE("key:value lines in order; headers, blank lines and lines without ':' skipped") {
  CHECK(all_fields("# Replication\r\nrole:master\r\n\r\nnot a field\r\nmaster_repl_offset:42\r\n") ==
        Fields{{"role", "master"}, {"master_repl_offset", "42"}});
}

TEST_CASE("LF line ends, a last line without its end, and ':' inside a value") {
  CHECK(all_fields("a:1\nexecutable:/x/y:z\nlast:9") ==
        Fields{{"a", "1"}, {"executable", "/x/y:z"}, {"last", "9"}});
}

TEST_CASE("info_field finds a whole key at a line start, not inside another line") {
  const char* info = "# Server\r\nredis_version:7.0.15\r\nexecutable:/x/valkey_version:9\r\nempty:\r\n";
  CHECK(dp::info_field(info, "redis_version") == "7.0.15");
  CHECK_FALSE(dp::info_field(info, "valkey_version").has_value());
  CHECK_FALSE(dp::info_field(info, "redis").has_value());
  CHECK(dp::info_field(info, "empty") == "");
  CHECK_FALSE(dp::info_field("", "role").has_value());
}

TEST_CASE("info_field returns the first of repeated keys") {
  CHECK(dp::info_field("k:1\r\nk:2\r\n", "k") == "1");
}
