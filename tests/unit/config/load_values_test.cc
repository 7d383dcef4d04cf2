// Values, secrets, overrides and the summary line.
#include <cstdlib>

#include <doctest/doctest.h>

#include "config/config.h"
#include "config/schema.h"
#include "unit/config/temp_file.h"

using namespace dp::config;

namespace {
Config load_ok(const std::string& yaml, const Overrides& o = {}) {
  LoadResult r = load_string(yaml, "t.yaml", o);
  INFO(r.error);
  REQUIRE(r.config.has_value());
  return *r.config;
}
std::string load_error(const std::string& yaml, const Overrides& o = {}) {
  LoadResult r = load_string(yaml, "t.yaml", o);
  CHECK_FALSE(r.config.has_value());
  return r.error;
}
}  // namespace

TEST_CASE("an empty file gives every default") {
  const Config c = load_ok("");
  const Config defaults;
  for (const auto& key : keys()) {
    INFO(key.name);
    CHECK(format_value(key, c) == format_value(key, defaults));
  }
  CHECK(c.source == "t.yaml");
  CHECK(c.upstream_password.empty());
  CHECK(c.admin_token.empty());
}

TEST_CASE("every default is a valid value of its key") {
  const Config defaults;
  for (const auto& key : keys()) {
    if (key.kind == KeyKind::inline_secret) continue;
    INFO(key.name);
    Config c;
    CHECK(set_value(key, format_value(key, defaults), &c) == "");
    CHECK_FALSE(key.help.empty());
  }
}

TEST_CASE("values of every kind land in their fields") {
  const Config c = load_ok(
      "listen: {address: \"0.0.0.0:7000\", max_clients: 50}\n"
      "upstream:\n  address: \"[::1]:6380\"\n  username: proxy\n  connect_timeout: 750ms\n"
      "limits:\n  max_bulk_len: 1mb\n  max_inline_len: 4k\n  max_multibulk_len: 100\n"
      "  client_buffer: 2mb\n  total_held: 3gb\n"
      "durability:\n  mode: off\n  hold_timeout: 1m\n  trust_script_keys: true\n  max_unsynced: 8mb\n"
      "log:\n  dir: /var/lib/dp\n  segment_size: 16mb\n  commit_delay_us: 200\n  fsync_overlap: 3\n"
      "checkpoint:\n  max_log_bytes: 256mb\n  interval: 0\n"
      "recovery:\n  restore_listen: \"127.0.0.1:17000\"\n  on_unknown_dataset: adopt\n"
      "admin:\n  enabled: false\n  address: \"0.0.0.0:9000\"\n"
      "logging:\n  level: debug\n  format: json\n  file: proxy.log\n"
      "shutdown:\n  timeout: 30s\n");
  CHECK(c.listen.str() == "0.0.0.0:7000");
  CHECK(c.max_clients == 50);
  CHECK(c.upstream.host == "::1");
  CHECK(c.upstream.port == 6380);
  CHECK(c.upstream_username == "proxy");
  CHECK(c.connect_timeout_ms == 750);
  CHECK(c.max_bulk_len == 1ull << 20);
  CHECK(c.max_inline_len == 4000);
  CHECK(c.max_multibulk_len == 100);
  CHECK(c.client_buffer_bytes == 2ull << 20);
  CHECK(c.total_held_bytes == 3ull << 30);
  CHECK(c.durability == DurabilityMode::off);
  CHECK(c.hold_timeout_ms == 60000);
  CHECK(c.trust_script_keys);
  CHECK(c.max_unsynced_bytes == 8ull << 20);
  CHECK(c.log_dir == "/var/lib/dp");
  CHECK(c.segment_bytes == 16ull << 20);
  CHECK(c.commit_delay_us == 200);
  CHECK(c.fsync_overlap == 3);
  CHECK(c.checkpoint_max_log_bytes == 256ull << 20);
  CHECK(c.checkpoint_interval_s == 0);
  CHECK(c.restore_listen.port == 17000);
  CHECK(c.on_unknown_dataset == OnUnknownDataset::adopt);
  CHECK_FALSE(c.admin_enabled);
  CHECK(c.admin.port == 9000);
  CHECK(c.log_level == "debug");
  CHECK(c.log_format == "json");
  CHECK(c.log_file == "proxy.log");
  CHECK(c.shutdown_timeout_ms == 30000);
}

TEST_CASE("an inline password is refused without echoing it") {
  const std::string err = load_error("upstream:\n  password: hunter2\n");
  CHECK(err ==
        "t.yaml:2:3: upstream.password: inline passwords are not accepted: put the password in a file named "
        "by upstream.password_file or in an environment variable named by upstream.password_env");
  CHECK(err.find("hunter2") == std::string::npos);
  CHECK(load_error("admin:\n  token: abc\n").rfind("t.yaml:2:3: admin.token: inline tokens are not accepted", 0) == 0);
}

TEST_CASE("a password file is read with trailing newlines stripped") {
  test::TempFile secret("s3cret pw\r\n\n");
  const Config c = load_ok("upstream:\n  password_file: " + secret.path() + "\n");
  CHECK(c.upstream_password == "s3cret pw");
  CHECK(c.upstream_password_file == secret.path());
  CHECK(summary(c).find("s3cret") == std::string::npos);
  CHECK(summary(c).find("password: set") != std::string::npos);
}

TEST_CASE("an unreadable or empty password file names the key, its place and the file") {
  CHECK(load_error("upstream:\n  password_file: /nonexistent-dp/pw\n") ==
        "t.yaml:2:18: upstream.password_file: cannot read '/nonexistent-dp/pw': No such file or directory");
  test::TempFile empty("\n");
  CHECK(load_error("upstream:\n  password_file: " + empty.path() + "\n") ==
        "t.yaml:2:18: upstream.password_file: file '" + empty.path() + "' is empty");
}

TEST_CASE("a password can come from an environment variable, which must be set") {
  setenv("DP_CONFIG_TEST_PW", "from-env", 1);
  CHECK(load_ok("upstream:\n  password_env: DP_CONFIG_TEST_PW\n").upstream_password == "from-env");
  unsetenv("DP_CONFIG_TEST_PW");
  CHECK(load_error("upstream:\n  password_env: DP_CONFIG_TEST_PW\n") ==
        "t.yaml:2:17: upstream.password_env: environment variable 'DP_CONFIG_TEST_PW' is not set");
}

TEST_CASE("password_file and password_env together are ambiguous") {
  test::TempFile secret("x\n");
  setenv("DP_CONFIG_TEST_PW2", "y", 1);
  CHECK(load_error("upstream:\n  password_file: " + secret.path() + "\n  password_env: DP_CONFIG_TEST_PW2\n") ==
        "t.yaml:3:17: upstream.password_env: set only one of upstream.password_file and upstream.password_env");
  unsetenv("DP_CONFIG_TEST_PW2");
}

TEST_CASE("the admin token comes from a file or the environment like the password") {
  test::TempFile token("tok\n");
  CHECK(load_ok("admin:\n  token_file: " + token.path() + "\n").admin_token == "tok");
  setenv("DP_CONFIG_TEST_TOKEN", "tok2", 1);
  CHECK(load_ok("admin:\n  token_env: DP_CONFIG_TEST_TOKEN\n").admin_token == "tok2");
  unsetenv("DP_CONFIG_TEST_TOKEN");
  CHECK(load_error("admin:\n  token_env: DP_CONFIG_TEST_TOKEN\n") ==
        "t.yaml:2:14: admin.token_env: environment variable 'DP_CONFIG_TEST_TOKEN' is not set");
}

TEST_CASE("command-line overrides win over the file") {
  Overrides o;
  o.listen = HostPort{"0.0.0.0", 7001};
  o.upstream = HostPort{"10.0.0.5", 6390};
  o.admin = HostPort{"0.0.0.0", 9001};
  o.log_dir = "/data/override";
  o.durability = DurabilityMode::off;
  const Config c = load_ok(
      "listen: {address: \"127.0.0.1:1\"}\nupstream: {address: \"127.0.0.1:2\"}\n"
      "admin: {enabled: false, address: \"127.0.0.1:3\"}\nlog: {dir: here}\ndurability: {mode: always}\n",
      o);
  CHECK(c.listen.str() == "0.0.0.0:7001");
  CHECK(c.upstream.str() == "10.0.0.5:6390");
  CHECK(c.admin.str() == "0.0.0.0:9001");
  CHECK(c.admin_enabled);  // naming an admin address asks for the endpoints
  CHECK(c.log_dir == "/data/override");
  CHECK(c.durability == DurabilityMode::off);
}

TEST_CASE("conflicting addresses name where the value came from") {
  CHECK(load_error("listen: {address: \"127.0.0.1:6379\"}\n") ==
        "t.yaml:1:19: listen.address: is the same as upstream.address (127.0.0.1:6379): the proxy would "
        "forward to itself");
  Overrides o;
  o.admin = HostPort{"127.0.0.1", 7379};
  CHECK(load_error("", o) == "command line --admin: admin.address: is the same as listen.address (127.0.0.1:7379)");
  CHECK(load_ok("admin: {enabled: false, address: \"127.0.0.1:7379\"}\n").admin_enabled == false);
}

TEST_CASE("the summary shows the effective addresses and hides secrets") {
  Config c;
  CHECK(summary(c) ==
        "listen=127.0.0.1:7379 upstream=127.0.0.1:6379 durability=always log.dir=./data/log "
        "admin=127.0.0.1:9379 (password: none, admin token: none)");
  c.upstream_password = "pw";
  c.admin_enabled = false;
  c.durability = DurabilityMode::off;
  CHECK(summary(c) ==
        "listen=127.0.0.1:7379 upstream=127.0.0.1:6379 durability=off log.dir=./data/log admin=off "
        "(password: set)");
}
