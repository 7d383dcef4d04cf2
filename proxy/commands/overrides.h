// The proxy's own knowledge of commands, by name, applied on top of what
// COMMAND says (VALKEY-SEMANTICS.md §1): hidden may_replicate writes,
// keyspace-wide reads, the commands the session tracks, and the ones whose
// keys need hand-written extraction.  The one list lives in overrides.cc.
#pragma once

#include <string_view>

#include "proxy/commands/command_info.h"
#include "proxy/commands/command_table.h"

namespace dp::commands {

struct Override {
  std::string_view name;  // lower case, "parent|sub" for subcommands
  Special special = Special::none;
  // forced kind; when not forced, COMMAND's flags decide (built-in table:
  // builtin_kind).
  bool force_kind = false;
  Kind kind = Kind::other;
  bool force_db_effect = false;
  DbEffect db_effect = DbEffect::keys;
  Handler handler = Handler::none;
  bool blocking = false;
  Kind builtin_kind = Kind::write;  // kind in the built-in table when not forced
  bool script = false;              // EVAL/FCALL family: depends on trust_script_keys
  bool function_libraries = false;  // names kFunctionLibrariesKey (classification.h)
};

// nullptr when the proxy has nothing to add for this lower-case name.
const Override* find_override(std::string_view name);

// Calls fn(const Override&) for every entry (used to build the built-in table).
template <typename Fn>
void for_each_override(Fn fn);

// Sets info.kind, special, handler, db_effect, blocking and use_key_specs
// from its flags and key specs, then applies the override for info.name.
// from_reply=false: a built-in entry with no flags.
void finalize(CommandInfo* info, const TableOptions& opts, bool from_reply);

size_t override_count();
const Override& override_at(size_t i);

template <typename Fn>
void for_each_override(Fn fn) {
  for (size_t i = 0; i < override_count(); ++i) fn(override_at(i));
}

}  // namespace dp::commands
