// What the proxy knows about one command (or one subcommand such as
// "config|get"): the upstream's COMMAND entry, decoded once at start-up, plus
// the proxy's own overrides (overrides.h).  Immutable after the table is
// built; shared read-only by every session.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "proxy/commands/classification.h"

namespace dp::commands {

// Command flags from COMMAND that the proxy reads.  Others are ignored.
enum Flag : uint32_t {
  kWrite = 1u << 0,
  kReadonly = 1u << 1,
  kBlocking = 1u << 2,
  kPubsub = 1u << 3,
  kNoscript = 1u << 4,
  kMovableKeys = 1u << 5,
  kModule = 1u << 6,
  kNoMulti = 1u << 7,
  kAdmin = 1u << 8,
  kLoading = 1u << 9,
  kStale = 1u << 10,
};

// One key spec: where the keys start (begin_search) and how many there are
// (find_keys).  A spec with an `unknown` part cannot be followed by reading
// the arguments (SORT's BY/GET/STORE); it is skipped and the command is
// either hand-written (overrides.h) or treated conservatively.
struct KeySpec {
  enum class Begin : uint8_t { index, keyword, unknown };
  enum class Find : uint8_t { range, keynum, unknown };
  Begin begin = Begin::unknown;
  int index = 0;          // index: argv position; keyword: startfrom (<0 counts from the end)
  std::string keyword;    // keyword search token, matched case-insensitively
  Find find = Find::unknown;
  int lastkey = 0;        // range
  int keystep = 1;        // range and keynum
  int limit = 0;          // range
  int keynumidx = 0;      // keynum
  int firstkey = 0;       // keynum
  bool not_key = false;   // e.g. SPUBLISH's shard channel: not a key
  bool incomplete = false;  // may miss keys (MIGRATE's KEYS)
};

// Hand-written argument readers for commands whose key specs or flags do not
// say enough (see overrides.cc for why each exists).
enum class Handler : uint8_t { none, sort, sort_ro, migrate, bitfield, xread, xreadgroup, swapdb, move, copy };

// How the write affects pending marks beyond its keys (DESIGN.md §1 rule 2).
enum class DbEffect : uint8_t {
  keys,      // only the keys it names
  none,      // changes no key (PUBLISH, FUNCTION LOAD, SCRIPT LOAD, EXEC by itself)
  whole_db,  // the whole current db (FLUSHDB, writes whose keys the specs cannot find)
  all_dbs,   // every db (FLUSHALL, DEBUG, CONFIG SET, scripts unless trusted, keyless writes)
};

struct CommandInfo {
  std::string name;  // lower case; subcommands as "parent|sub"
  int arity = 0;     // 0 = unknown (built-in table): not checked
  uint32_t flags = 0;
  int first_key = 0, last_key = 0, step = 0;  // legacy key positions
  std::vector<KeySpec> key_specs;

  // Derived once by finalize() from the above plus the override list.
  Kind kind = Kind::write;
  Special special = Special::none;
  Handler handler = Handler::none;
  DbEffect db_effect = DbEffect::keys;
  bool blocking = false;
  bool use_key_specs = false;  // else first_key/last_key/step

  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  // Subcommands by their lower-case name after the '|' ("get" for config|get).
  std::unordered_map<std::string, std::unique_ptr<CommandInfo>, NameHash, std::equal_to<>> subcommands;
};

}  // namespace dp::commands
