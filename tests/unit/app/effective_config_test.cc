#include "proxy/app/effective_config.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <string>

#include "config/schema.h"

using dp::config::Config;

namespace {
Config load(const std::string& yaml) {
  auto r = dp::config::load_string(yaml, "test.yaml", {});
  REQUIRE_MESSAGE(r.config.has_value(), r.error);
  return *r.config;
}
}  // namespace

TEST_CASE("the effective config lists every key of the table with its value in force") {
  const Config c = load("listen:\n  address: 127.0.0.1:7000\ndurability:\n  hold_timeout: 250ms\n");
  const auto items = dp::effective_config(c);
  size_t table_keys = 0;
  for (const auto& k : dp::config::keys())
    if (k.kind != dp::config::KeyKind::inline_secret) ++table_keys;
  CHECK(items.size() == table_keys + 2);
  const std::string line = dp::effective_config_line(c);
  CHECK(line.find("listen.address=127.0.0.1:7000 ") != std::string::npos);
  CHECK(line.find("durability.hold_timeout=250ms") != std::string::npos);
  CHECK(line.find("upstream.username=\"\"") != std::string::npos);  // empty values quoted
  CHECK(line.find("upstream.password=none") != std::string::npos);
  const std::string json = dp::effective_config_json(c);
  CHECK(json.front() == '{');
  CHECK(json.back() == '}');
  CHECK(json.find("\"durability.mode\":\"always\"") != std::string::npos);
}

TEST_CASE("secrets appear in the effective config only as set") {
  setenv("DP_EFFECTIVE_CONFIG_TEST_PW", "hunter2-secret", 1);
  const Config c = load("upstream:\n  password_env: DP_EFFECTIVE_CONFIG_TEST_PW\n");
  unsetenv("DP_EFFECTIVE_CONFIG_TEST_PW");
  REQUIRE(c.upstream_password == "hunter2-secret");
  const std::string line = dp::effective_config_line(c);
  const std::string json = dp::effective_config_json(c);
  CHECK(line.find("hunter2") == std::string::npos);
  CHECK(json.find("hunter2") == std::string::npos);
  CHECK(line.find("upstream.password=set") != std::string::npos);
  CHECK(line.find("upstream.password_env=DP_EFFECTIVE_CONFIG_TEST_PW") != std::string::npos);
}

TEST_CASE("values with spaces, quotes or control characters are quoted and escaped") {
  Config c = load("{}\n");
  c.log_dir = "/var/lib/a dir/\"x\"\n";
  const std::string line = dp::effective_config_line(c);
  CHECK(line.find("log.dir=\"/var/lib/a dir/\\\"x\\\"\\u000a\"") != std::string::npos);
  CHECK(dp::effective_config_json(c).find("\"log.dir\":\"/var/lib/a dir/\\\"x\\\"\\u000a\"") != std::string::npos);
}
