#include "proxy/commands/command_table.h"

#include "proxy/commands/command_reply_parser.h"
#include "proxy/commands/key_extraction.h"
#include "proxy/commands/overrides.h"

namespace dp::commands {
namespace {

// Longer names cannot be in the table (the longest is ~30 bytes); they fall
// through to "unknown", which is the safe answer.
constexpr size_t kMaxName = 64;

// Lower-cases `in` into buf; false when it does not fit.
bool lower_into(std::string_view in, char (&buf)[kMaxName], std::string_view* out) {
  if (in.size() > kMaxName) return false;
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    buf[i] = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  }
  *out = std::string_view(buf, in.size());
  return true;
}

bool arity_ok(int arity, size_t argc) {
  if (arity == 0) return true;  // not known (built-in table)
  if (arity > 0) return argc == static_cast<size_t>(arity);
  return argc >= static_cast<size_t>(-static_cast<int64_t>(arity));
}

void finalize_tree(CommandInfo* info, const TableOptions& opts) {
  finalize(info, opts, true);
  for (auto& [name, sub] : info->subcommands) finalize_tree(sub.get(), opts);
}

}  // namespace

std::unique_ptr<CommandTable> CommandTable::from_command_reply(const resp::Value& reply, TableOptions opts,
                                                              std::string* error) {
  if (reply.type == resp::Value::Type::error) {
    *error = "COMMAND reply is an error: " + reply.str;
    return nullptr;
  }
  if (reply.type != resp::Value::Type::array && reply.type != resp::Value::Type::set) {
    *error = "COMMAND reply is not an array";
    return nullptr;
  }
  std::unique_ptr<CommandTable> table(new CommandTable());
  table->opts_ = opts;
  for (size_t i = 0; i < reply.elems.size(); ++i) {
    auto info = std::make_unique<CommandInfo>();
    if (!parse_command_entry(reply.elems[i], "COMMAND reply entry " + std::to_string(i), info.get(), error))
      return nullptr;
    finalize_tree(info.get(), opts);
    std::string name = info->name;
    table->commands_[name] = std::move(info);
  }
  if (table->commands_.empty()) {
    *error = "COMMAND reply lists no commands";
    return nullptr;
  }
  return table;
}

std::unique_ptr<CommandTable> CommandTable::builtin(TableOptions opts) {
  std::unique_ptr<CommandTable> table(new CommandTable());
  table->opts_ = opts;
  for_each_override([&](const Override& ov) {
    std::string_view name = ov.name;
    size_t bar = name.find('|');
    auto info = std::make_unique<CommandInfo>();
    info->name = std::string(name);
    finalize(info.get(), opts, false);
    if (bar == std::string_view::npos) {
      table->commands_[std::string(name)] = std::move(info);
      return;
    }
    // A parent made only to hold this subcommand: itself unknown (a write).
    std::string parent(name.substr(0, bar));
    auto& slot = table->commands_[parent];
    if (!slot) {
      slot = std::make_unique<CommandInfo>();
      slot->name = parent;
      finalize(slot.get(), opts, false);
    }
    slot->subcommands[std::string(name.substr(bar + 1))] = std::move(info);
  });
  return table;
}

const CommandInfo* CommandTable::find(std::string_view name) const {
  char buf[kMaxName];
  std::string_view lname;
  if (!lower_into(name, buf, &lname)) return nullptr;
  size_t bar = lname.find('|');
  auto it = commands_.find(lname.substr(0, bar));
  if (it == commands_.end()) return nullptr;
  if (bar == std::string_view::npos) return it->second.get();
  auto sub = it->second->subcommands.find(lname.substr(bar + 1));
  return sub == it->second->subcommands.end() ? nullptr : sub->second.get();
}

std::vector<const CommandInfo*> CommandTable::commands() const {
  std::vector<const CommandInfo*> out;
  out.reserve(commands_.size());
  for (const auto& [name, info] : commands_) out.push_back(info.get());
  return out;
}

const CommandInfo* CommandTable::lookup(const std::vector<std::string_view>& args) const {
  char buf[kMaxName];
  std::string_view lname;
  if (args.empty() || !lower_into(args[0], buf, &lname)) return nullptr;
  auto it = commands_.find(lname);
  if (it == commands_.end()) return nullptr;
  const CommandInfo* info = it->second.get();
  if (info->subcommands.empty() || args.size() < 2) return info;  // too few args: the container
  if (!lower_into(args[1], buf, &lname)) return nullptr;
  auto sub = info->subcommands.find(lname);
  return sub == info->subcommands.end() ? nullptr : sub->second.get();
}

void CommandTable::classify(const std::vector<std::string_view>& args, Classification* out) const {
  out->reset();
  const CommandInfo* info = lookup(args);
  if (info == nullptr) {  // unknown command or subcommand: may write anything, in any db
    out->db_wide = out->all_dbs = true;
    return;
  }
  out->info = info;
  out->kind = info->kind;
  out->special = info->special;
  out->blocking = info->blocking;
  out->db_wide = info->db_effect == DbEffect::whole_db || info->db_effect == DbEffect::all_dbs;
  out->all_dbs = info->db_effect == DbEffect::all_dbs;

  if (!handler_finds_all_keys(info->handler)) {
    if (info->use_key_specs)
      keys_from_specs(info->key_specs, args, &out->keys);
    else
      keys_from_range(info->first_key, info->last_key, info->step, args, &out->keys);
  }
  apply_handler(info->handler, args, out);

  if (!arity_ok(info->arity, args.size())) {
    // The server rejects it without running it; a write is the answer that
    // cannot be wrong.
    out->kind = Kind::write;
    out->blocking = false;
  }
  if (out->kind != Kind::write) {
    out->db_wide = out->all_dbs = false;
    out->other_db = out->other_db2 = -1;
  }
}

}  // namespace dp::commands
