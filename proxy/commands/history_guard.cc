#include "proxy/commands/history_guard.h"

#include "proxy/base/ascii.h"

namespace dp::commands {

std::string history_refusal(const std::vector<std::string_view>& args) {
  if (args.empty()) return {};
  const std::string_view cmd = args[0];
  const std::string_view sub = args.size() > 1 ? args[1] : std::string_view();
  if (iequals(cmd, "replicaof") || iequals(cmd, "slaveof")) {
    if (args.size() == 3 && iequals(args[1], "no") && iequals(args[2], "one")) return {};
    return "the upstream would replace its data with another primary's, which the proxy's log does not hold";
  }
  if (iequals(cmd, "failover")) {
    if (args.size() == 2 && iequals(sub, "abort")) return {};
    return "the upstream would hand the primary role to a replica, whose writes the proxy does not log";
  }
  if (iequals(cmd, "cluster") && (iequals(sub, "failover") || iequals(sub, "replicate") || iequals(sub, "reset")))
    return "the node would change roles or drop its data outside the replication stream the proxy logs";
  if (iequals(cmd, "debug")) {
    if (iequals(sub, "reload") && args.size() > 2)
      return "DEBUG RELOAD with options loads an RDB file the replication stream never carried (plain DEBUG RELOAD "
             "is allowed)";
    if (iequals(sub, "loadaof"))
      return "the upstream would empty its data and load its AOF files outside the replication stream";
    if (iequals(sub, "populate"))
      return "DEBUG POPULATE creates keys outside the replication stream: the proxy's log would never hold them, "
             "so they could not be restored although acknowledged";
    if (iequals(sub, "replicate"))
      return "DEBUG REPLICATE sends a command down the replication stream that the upstream never ran: the log "
             "would restore data the upstream never had";
    if (iequals(sub, "change-repl-id"))
      return "the upstream would start a new replication history that the proxy's log cannot continue";
  }
  return {};
}

}  // namespace dp::commands
