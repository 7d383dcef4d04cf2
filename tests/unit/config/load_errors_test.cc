// Every kind of config error names file:line:column (1-based) and the key.
#include <doctest/doctest.h>

#include "config/config.h"
#include "unit/config/temp_file.h"

using namespace dp::config;

namespace {
std::string error_of(const std::string& yaml) {
  LoadResult r = load_string(yaml, "proxy.yaml", Overrides{});
  CHECK_FALSE(r.config.has_value());
  return r.error;
}
}  // namespace

TEST_CASE("a value outside an enum names the key, its place and the allowed values") {
  CHECK(error_of("listen:\n  address: \"127.0.0.1:7000\"\ndurability:\n  mode: sometimes\n") ==
        "proxy.yaml:4:9: durability.mode: expected one of always, off, got 'sometimes'");
}

TEST_CASE("an unknown section is reported with the closest known name") {
  CHECK(error_of("listen:\n  max_clients: 5\nupstrem:\n  address: \"h:1\"\n") ==
        "proxy.yaml:3:1: unknown key 'upstrem' (did you mean 'upstream'?)");
}

TEST_CASE("an unknown key inside a section is reported with its dotted name and a hint") {
  CHECK(error_of("upstream:\n  adress: \"h:1\"\n") ==
        "proxy.yaml:2:3: unknown key 'upstream.adress' (did you mean 'upstream.address'?)");
  CHECK(error_of("upstream:\n  max_bulk_len: 1mb\n") ==
        "proxy.yaml:2:3: unknown key 'upstream.max_bulk_len' (it belongs under 'limits:')");
  CHECK(error_of("shutdown:\n  zzzzzzzz: 1\n") ==
        "proxy.yaml:2:3: unknown key 'shutdown.zzzzzzzz' (shutdown has: timeout)");
}

TEST_CASE("a key written at the top level points to its section") {
  CHECK(error_of("max_bulk_len: 1mb\n") == "proxy.yaml:1:1: unknown key 'max_bulk_len' (it belongs under 'limits:')");
  CHECK(error_of("limits.max_bulk_len: 1mb\n") ==
        "proxy.yaml:1:1: unknown key 'limits.max_bulk_len' (write 'max_bulk_len:' indented under 'limits:')");
}

TEST_CASE("a wrong type names the expected type") {
  CHECK(error_of("listen:\n  max_clients: lots\n") ==
        "proxy.yaml:2:16: listen.max_clients: expected a whole number from 1 to 1000000, got 'lots'");
  CHECK(error_of("durability:\n  trust_script_keys: maybe\n") ==
        "proxy.yaml:2:22: durability.trust_script_keys: expected true or false, got 'maybe'");
  CHECK(error_of("durability:\n  allow_replica_sync: 1\n") ==
        "proxy.yaml:2:23: durability.allow_replica_sync: expected true or false, got '1'");
  CHECK(error_of("listen:\n  address: [a, b]\n") == "proxy.yaml:2:12: listen.address: expected HOST:PORT, got a list");
  CHECK(error_of("log:\n  dir: {a: 1}\n") == "proxy.yaml:2:8: log.dir: expected a non-empty string, got a mapping");
}

TEST_CASE("out-of-range numbers, sizes and durations state the range") {
  CHECK(error_of("listen:\n  max_clients: 0\n") ==
        "proxy.yaml:2:16: listen.max_clients: expected a whole number from 1 to 1000000, got '0'");
  CHECK(error_of("log:\n  segment_size: 1kb\n") ==
        "proxy.yaml:2:17: log.segment_size: expected a size from 4kb to 16gb, got '1kb'");
  CHECK(error_of("shutdown:\n  timeout: 2h\n") ==
        "proxy.yaml:2:12: shutdown.timeout: expected a duration from 0ms to 1h, got '2h'");
  CHECK(error_of("limits:\n  max_bulk_len: 100\n") ==
        "proxy.yaml:2:17: limits.max_bulk_len: expected a size of at least 1kb, got '100'");
  CHECK(error_of("upstream:\n  address: \"h:0\"\n") ==
        "proxy.yaml:2:12: upstream.address: port 0 (any free port) is not allowed here, got 'h:0'");
}

TEST_CASE("malformed values keep the parser's reason") {
  CHECK(error_of("checkpoint:\n  interval: 10\n") ==
        "proxy.yaml:2:13: checkpoint.interval: duration '10' needs a unit (us, ms, s, m or h)");
  CHECK(error_of("upstream:\n  address: localhost\n") ==
        "proxy.yaml:2:12: upstream.address: expected HOST:PORT such as 127.0.0.1:6379 or [::1]:6379, got "
        "'localhost'");
}

TEST_CASE("errors inside a flow mapping point at the value") {
  CHECK(error_of("upstream: {address: \"h:1\", connect_timeout: 5x}\n") ==
        "proxy.yaml:1:45: upstream.connect_timeout: expected a duration such as 500ms, 10s, 5m or 1h, got '5x'");
}

TEST_CASE("a key without a value is an error at the key unless it is a string") {
  CHECK(error_of("listen:\n  max_clients:\nlog:\n  dir: x\n") ==
        "proxy.yaml:2:3: listen.max_clients: has no value; expected a whole number from 1 to 1000000");
  LoadResult r = load_string("logging:\n  file:\n", "proxy.yaml", Overrides{});
  REQUIRE(r.config);
  CHECK(r.config->log_file == "");
}

TEST_CASE("an empty required string is rejected") {
  CHECK(error_of("log:\n  dir: \"\"\n") == "proxy.yaml:2:8: log.dir: expected a non-empty string, got ''");
}

TEST_CASE("a section that is not a mapping is rejected with its keys listed") {
  CHECK(error_of("listen: \"127.0.0.1:7379\"\n") ==
        "proxy.yaml:1:9: listen: expected a mapping of keys (address, max_clients), got a value");
}

TEST_CASE("duplicate keys are errors that point at both") {
  CHECK(error_of("listen:\n  max_clients: 5\n  max_clients: 6\n") ==
        "proxy.yaml:3:3: duplicate key 'listen.max_clients' (first at line 2)");
  CHECK(error_of("log: {}\nlisten: {}\nlog: {}\n") == "proxy.yaml:3:1: duplicate key 'log' (first at line 1)");
}

TEST_CASE("YAML syntax errors carry line and column") {
  CHECK(error_of("listen:\n  address: \"unterminated") ==
        "proxy.yaml:2:25: YAML syntax error: illegal EOF in scalar");
  CHECK(error_of("listen:\n  address: [1, 2\n") == "proxy.yaml:3:1: YAML syntax error: end of sequence flow not found");
  CHECK(error_of("listen:\n  address: a\n   max_clients: 2\n") ==
        "proxy.yaml:3:15: YAML syntax error: illegal map value");
}

TEST_CASE("the top level must be a mapping") {
  CHECK(error_of("- listen\n") ==
        "proxy.yaml:1:1: expected a mapping of sections (listen:, upstream:, ...), got a list");
}

TEST_CASE("a missing config file is named with the reason") {
  LoadResult r = load_file("/nonexistent-dp-dir/proxy.yaml", Overrides{});
  CHECK_FALSE(r.config);
  CHECK(r.error == "cannot read config file '/nonexistent-dp-dir/proxy.yaml': No such file or directory");
}

TEST_CASE("errors from a file use its path as given") {
  test::TempFile file("durability:\n  mode: never\n", ".yaml");
  LoadResult r = load_file(file.path(), Overrides{});
  CHECK_FALSE(r.config);
  CHECK(r.error == file.path() + ":2:9: durability.mode: expected one of always, off, got 'never'");
}
