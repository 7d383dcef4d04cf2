// Decodes one entry of a COMMAND reply (VALKEY-SEMANTICS.md §1):
//   [name, arity, flags, first_key, last_key, step, acl_categories, tips,
//    key_specs, subcommands]
// Servers before 7.0 send only the first 6 or 7 fields; those are enough.
// Key specs and their parts may be RESP2 flat arrays or RESP3 maps.
#pragma once

#include <string>

#include "proxy/commands/command_info.h"
#include "proxy/resp/value.h"

namespace dp::commands {

// Fills *out (name lower-cased, subcommands included, not finalized).
// On failure *error says which field is wrong, prefixed with `where`.
bool parse_command_entry(const resp::Value& entry, const std::string& where, CommandInfo* out,
                         std::string* error);

}  // namespace dp::commands
