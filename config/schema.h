// The one table of proxy.yaml keys.  Parsing, defaults, validation,
// unknown-key detection, the command-line overrides and the documented
// proxy.yaml text all come from it.  Defaults are the in-class initializers
// of Config (config/config.h): the table only says how to read, check and
// print each value.  The table is immutable; any thread may read it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config/config.h"

namespace dp::config {

enum class KeyKind {
  string,         // any scalar; `min` = shortest allowed length
  boolean,        // true/false (yes/no)
  uint,           // plain integer within [min, max]
  size,           // bytes: 4096, 64kb, 64mb, 1gb; within [min, max]
  duration,       // 500ms, 10s, 1h; stored in `unit_us` units; within [min, max]
  choice,         // one of `choices`; an enum field holds the index
  host_port,      // HOST:PORT; `min` = lowest allowed port (0 = any free port)
  inline_secret,  // a key that exists only to be refused (secrets never inline)
};

using Field = std::variant<std::monostate, std::string Config::*, bool Config::*, uint32_t Config::*,
                           uint64_t Config::*, HostPort Config::*, DurabilityMode Config::*,
                           OnUnknownDataset Config::*, UpstreamSharing Config::*>;

struct Key {
  std::string_view name;  // dotted: "section.leaf"
  KeyKind kind;
  Field field = {};
  std::string_view help;  // one line, for proxy.yaml
  uint64_t min = 0;
  uint64_t max = UINT64_MAX;
  uint64_t unit_us = 0;                   // duration only
  std::vector<std::string_view> choices = {};  // choice only

  std::string_view section() const { return name.substr(0, name.find('.')); }
  std::string_view leaf() const { return name.substr(name.find('.') + 1); }
};

struct Section {
  std::string_view name;
  std::string_view help;  // may span lines ('\n')
};

const std::vector<Section>& sections();
const std::vector<Key>& keys();
const Key* find_key(std::string_view dotted);

// Parses `text` as `key`'s value into `c`.  Returns "" or the reason
// (without place or key name).  inline_secret always fails.
std::string set_value(const Key& key, const std::string& text, Config* c);
// `key`'s value in `c` as proxy.yaml spells it (strings unquoted).
std::string format_value(const Key& key, const Config& c);
// What values `key` accepts, e.g. "one of always, off", "from 1 to 1000000".
std::string describe_values(const Key& key);

// The documented proxy.yaml: every key with its help and default value.
// The repository's proxy.yaml must equal this text (a unit test checks).
std::string documented_yaml();

}  // namespace dp::config
