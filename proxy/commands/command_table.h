// The command table: every command the upstream announced in its COMMAND
// reply, classified for the reply gate (DESIGN.md §1, §3;
// VALKEY-SEMANTICS.md §1).  Anything the table does not know is a write that
// makes its whole db pending.
//
// Built once at start-up (loop thread), then immutable: classify() is const,
// allocation-free in steady state and safe from any thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "proxy/commands/classification.h"
#include "proxy/commands/command_info.h"
#include "proxy/resp/value.h"

namespace dp::commands {

struct TableOptions {
  // durability.trust_script_keys: scripts and functions touch only the keys
  // they declare, so they mark only those (writes) or wait only on those
  // (EVAL_RO...).  Off: they make the whole db pending / wait like a write.
  bool trust_script_keys = false;
};

class CommandTable {
 public:
  // From the upstream's COMMAND reply (RESP2 arrays or RESP3 maps).  On a
  // malformed entry returns nullptr with *error naming the entry.
  static std::unique_ptr<CommandTable> from_command_reply(const resp::Value& reply, TableOptions opts,
                                                          std::string* error);
  // Fallback when COMMAND cannot be read (renamed, denied): every command is
  // unknown (write, db_wide) except the few the proxy must understand, known
  // by name.
  static std::unique_ptr<CommandTable> builtin(TableOptions opts);

  // args[0] is the command name (any case); subcommands (CONFIG GET, CLIENT
  // REPLY, FUNCTION LOAD...) are found by args[1].  Never reads past
  // args.size(); a call with wrong arity is classified as a write with the
  // keys that are in range (the server will reject it).  Empty args: unknown.
  void classify(const std::vector<std::string_view>& args, Classification* out) const;

  // Number of top-level commands (subcommands not counted).
  size_t size() const { return commands_.size(); }
  // nullptr if absent.  name: "get" or "config|get", any case.
  const CommandInfo* find(std::string_view name) const;
  // Every top-level command (start-up, diagnostics and tests; allocates).
  std::vector<const CommandInfo*> commands() const;

 private:
  CommandTable() = default;
  const CommandInfo* lookup(const std::vector<std::string_view>& args) const;

  TableOptions opts_;
  std::unordered_map<std::string, std::unique_ptr<CommandInfo>, CommandInfo::NameHash, std::equal_to<>>
      commands_;
};

}  // namespace dp::commands
