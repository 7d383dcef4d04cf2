// The repository's proxy.yaml is the documented default: it must list every
// key of the table with its help and default, and load to the defaults.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <vector>

#include <doctest/doctest.h>

#include "config/config.h"
#include "config/schema.h"
#include "unit/config/temp_file.h"

using namespace dp::config;

namespace {
std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}
}  // namespace

TEST_CASE("proxy.yaml at the repository root is the text generated from the key table") {
  const std::string path = test::repo_root() + "/proxy.yaml";
  const std::string actual = read_text(path);
  const std::string expected = documented_yaml();
  if (actual != expected) {
    // Leave the expected text beside the build so it can be copied over.
    std::ofstream out("proxy.yaml.expected", std::ios::binary);
    out << expected;
    MESSAGE("proxy.yaml differs from documented_yaml(); expected text written to ./proxy.yaml.expected");
  }
  // Report the first differing line rather than two whole files.
  std::istringstream a(actual), e(expected);
  std::string line_a, line_e;
  int line = 0;
  bool more_a = true, more_e = true;
  while (more_a || more_e) {
    ++line;
    more_a = static_cast<bool>(std::getline(a, line_a));
    more_e = static_cast<bool>(std::getline(e, line_e));
    if (!more_a) line_a = "<end of file>";
    if (!more_e) line_e = "<end of file>";
    if (line_a != line_e) break;
  }
  INFO("first difference at proxy.yaml line ", line);
  CHECK(line_a == line_e);
  CHECK(actual == expected);
}

TEST_CASE("proxy.yaml loads and every key equals its default") {
  const std::string path = test::repo_root() + "/proxy.yaml";
  LoadResult r = load_file(path, Overrides{});
  INFO(r.error);
  REQUIRE(r.config);
  const Config defaults;
  for (const auto& key : keys()) {
    INFO(key.name);
    CHECK(format_value(key, *r.config) == format_value(key, defaults));
  }
  // What the quickstart relies on.
  CHECK(r.config->listen.str() == "127.0.0.1:7379");
  CHECK(r.config->upstream.str() == "127.0.0.1:6379");
  CHECK(r.config->log_dir == "./data/log");
  CHECK(r.config->admin.str() == "127.0.0.1:9379");
}

TEST_CASE("the documented text names every key with a comment above it") {
  std::istringstream text(documented_yaml());
  std::string line, previous, section;
  std::vector<std::string> documented;
  while (std::getline(text, line)) {
    if (!line.empty() && line[0] != '#' && line[0] != ' ') section = line.substr(0, line.find(':'));
    if (line.rfind("  ", 0) == 0 && line[2] != '#') {
      documented.push_back(section + "." + line.substr(2, line.find(':') - 2));
      CHECK(previous.rfind("  # ", 0) == 0);
    }
    previous = line;
  }
  for (const auto& key : keys()) {
    if (key.kind == KeyKind::inline_secret) continue;
    INFO(key.name);
    CHECK(std::find(documented.begin(), documented.end(), std::string(key.name)) != documented.end());
  }
}

TEST_CASE("a changed default would make the generated text differ") {
  // Guards the comparison above: the generator really prints Config's values.
  const std::string text = documented_yaml();
  CHECK(text.find("  max_bulk_len: 512mb\n") != std::string::npos);
  CHECK(text.find("  address: \"127.0.0.1:7379\"\n") != std::string::npos);
  CHECK(text.find("  interval: 1h\n") != std::string::npos);
}
