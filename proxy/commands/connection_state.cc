#include "proxy/commands/connection_state.h"

#include <initializer_list>

#include "proxy/base/ascii.h"
#include "proxy/commands/command_info.h"

namespace dp::commands {

namespace {

bool is_any(std::string_view name, std::initializer_list<std::string_view> names) {
  for (std::string_view n : names)
    if (iequals(name, n)) return true;
  return false;
}

}  // namespace

bool needs_own_connection(const Classification& cls, const std::vector<std::string_view>& args) {
  if (args.empty()) return false;
  // A module command may block without the flag or answer more than once.
  if (cls.info == nullptr || cls.blocking || (cls.info->flags & kModule) != 0) return true;
  switch (cls.special) {
    case Special::none:
    case Special::ping:
    case Special::info:
    case Special::eval:
    case Special::evalsha:
    case Special::fcall:
    case Special::eval_ro:
    case Special::evalsha_ro:
    case Special::fcall_ro:
      break;
    default:
      return true;  // connection state the session tracks, a pipe, or SHUTDOWN
  }
  const std::string_view name = args[0];
  if (iequals(name, "client")) return !keeps_setinfo(cls, args);
  if (is_any(name, {"readonly", "readwrite", "asking", "auth", "hello", "select", "quit", "reset"})) return true;
  // SCRIPT DEBUG is connection state; SCRIPT KILL / FUNCTION KILL must not
  // queue behind the busy script on the connection that runs it.
  if ((iequals(name, "script") || iequals(name, "function")) && args.size() > 1 &&
      (iequals(args[1], "debug") || iequals(args[1], "kill")))
    return true;
  return false;
}

bool keeps_setinfo(const Classification& cls, const std::vector<std::string_view>& args) {
  if (cls.info == nullptr || args.size() != 4 || !iequals(args[0], "client") || !iequals(args[1], "setinfo"))
    return false;
  if (!iequals(args[2], "lib-name") && !iequals(args[2], "lib-ver")) return false;
  for (char c : args[3])
    if (c < '!' || c > '~') return false;
  return true;
}

}  // namespace dp::commands
