#include <initializer_list>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "config/config.h"
#include "unit/config/temp_file.h"

using namespace dp::config;

namespace {
// Runs parse_command_line on "durable-proxy <args...>".
std::string parse(std::initializer_list<std::string> args, CommandLine* out) {
  std::vector<std::string> storage{"durable-proxy"};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);
  return parse_command_line(static_cast<int>(storage.size()), argv.data(), out);
}
std::string error_of(std::initializer_list<std::string> args) {
  CommandLine cl;
  return parse(args, &cl);
}
}  // namespace

TEST_CASE("no arguments means ./proxy.yaml and no overrides") {
  CommandLine cl;
  CHECK(parse({}, &cl) == "");
  CHECK(cl.config_path == "proxy.yaml");
  CHECK_FALSE(cl.config_path_given);
  CHECK_FALSE(cl.check_config);
  CHECK_FALSE(cl.overrides.listen);
  CHECK_FALSE(cl.overrides.durability);
}

TEST_CASE("every override flag is accepted as '--flag value' and '--flag=value'") {
  CommandLine a, b;
  CHECK(parse({"--config", "/etc/dp.yaml", "--listen", "0.0.0.0:7000", "--upstream", "[::1]:6380", "--log-dir",
               "/var/lib/dp", "--admin", "127.0.0.1:9000", "--durability", "off"},
              &a) == "");
  CHECK(parse({"--config=/etc/dp.yaml", "--listen=0.0.0.0:7000", "--upstream=[::1]:6380", "--log-dir=/var/lib/dp",
               "--admin=127.0.0.1:9000", "--durability=off"},
              &b) == "");
  for (const CommandLine* cl : {&a, &b}) {
    CHECK(cl->config_path == "/etc/dp.yaml");
    CHECK(cl->config_path_given);
    REQUIRE(cl->overrides.listen);
    CHECK(cl->overrides.listen->str() == "0.0.0.0:7000");
    REQUIRE(cl->overrides.upstream);
    CHECK(cl->overrides.upstream->str() == "[::1]:6380");
    CHECK(cl->overrides.log_dir == std::optional<std::string>("/var/lib/dp"));
    REQUIRE(cl->overrides.admin);
    CHECK(cl->overrides.admin->port == 9000);
    CHECK(cl->overrides.durability == std::optional<DurabilityMode>(DurabilityMode::off));
  }
}

TEST_CASE("switches set their flags") {
  CommandLine cl;
  CHECK(parse({"--check-config", "--version"}, &cl) == "");
  CHECK(cl.check_config);
  CHECK(cl.version);
  CHECK_FALSE(cl.help);
  CommandLine h1, h2;
  CHECK(parse({"--help"}, &h1) == "");
  CHECK(parse({"-h"}, &h2) == "");
  CHECK(h1.help);
  CHECK(h2.help);
}

TEST_CASE("command-line errors name the flag") {
  CHECK(error_of({"--listen"}) == "--listen needs a value (HOST:PORT)");
  CHECK(error_of({"--log-dir", "--check-config"}) == "--log-dir needs a value (DIR)");
  CHECK(error_of({"--listen", "7379"}) ==
        "--listen: expected HOST:PORT such as 127.0.0.1:6379 or [::1]:6379, got '7379'");
  CHECK(error_of({"--durability=sometimes"}) == "--durability: expected one of always, off, got 'sometimes'");
  CHECK(error_of({"--upstream", "h:0"}) == "--upstream: port 0 (any free port) is not allowed here, got 'h:0'");
  CHECK(error_of({"--log-dir="}) == "--log-dir: expected a non-empty string, got ''");
  CHECK(error_of({"--config="}) == "--config: expected a file name, got ''");
  CHECK(error_of({"--version=2"}) == "--version takes no value, got '2'");
  CHECK(error_of({"--lisen", "x"}) == "unknown option '--lisen' (see --help)");
  CHECK(error_of({"proxy.yaml"}) ==
        "unexpected argument 'proxy.yaml' (the config file is given with --config FILE; see --help)");
}

TEST_CASE("the usage text lists every flag the deployment files rely on") {
  const std::string usage = usage_text();
  for (const char* flag : {"--config FILE", "--listen HOST:PORT", "--upstream HOST:PORT", "--log-dir DIR",
                           "--admin HOST:PORT", "--durability always|off", "--check-config", "--version", "--help"}) {
    INFO(flag);
    CHECK(usage.find(flag) != std::string::npos);
  }
}

TEST_CASE("without --config and without ./proxy.yaml the built-in defaults and the flags apply") {
  CommandLine cl;
  REQUIRE(parse({"--listen", "127.0.0.1:7001", "--durability", "off"}, &cl) == "");
  cl.config_path = "/nonexistent-dp-dir/proxy.yaml";  // the default path, absent
  std::string source;
  LoadResult lr = load_for_command_line(cl, &source);
  REQUIRE_MESSAGE(lr.config, lr.error);
  CHECK(source == kBuiltInDefaults);
  CHECK(lr.config->listen.port == 7001);
  CHECK(lr.config->durability == DurabilityMode::off);
}

TEST_CASE("an explicit --config that is missing is an error naming the path") {
  CommandLine cl;
  REQUIRE(parse({"--config", "/nonexistent-dp-dir/my.yaml"}, &cl) == "");
  std::string source;
  LoadResult lr = load_for_command_line(cl, &source);
  CHECK_FALSE(lr.config);
  CHECK(lr.error.find("/nonexistent-dp-dir/my.yaml") != std::string::npos);
  CHECK(lr.error.find("No such file") != std::string::npos);
}

TEST_CASE("without --config an existing ./proxy.yaml is read") {
  dp::config::test::TempFile f("listen:\n  address: 127.0.0.1:7002\n", ".yaml");
  CommandLine cl;
  REQUIRE(parse({}, &cl) == "");
  cl.config_path = f.path();  // stands for ./proxy.yaml
  std::string source;
  LoadResult lr = load_for_command_line(cl, &source);
  REQUIRE_MESSAGE(lr.config, lr.error);
  CHECK(source == f.path());
  CHECK(lr.config->listen.port == 7002);
}
