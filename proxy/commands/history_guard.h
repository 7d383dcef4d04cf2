// Commands that would move the upstream to another history when sent
// through the proxy: afterwards Valkey's data is no longer what the log's
// stream leads to (another primary's data, a file reloaded outside the
// stream, a new replication id), so an acknowledged write could be lost or
// the log could no longer follow.  The session refuses them (README,
// "Durability contract"); everything else passes.
//
//   REPLICAOF / SLAVEOF host port   replaces the data with another primary's
//                                   (NO ONE passes: it keeps the data)
//   FAILOVER (not ABORT)            hands the primary role to a replica
//   CLUSTER FAILOVER / REPLICATE / RESET   the same in cluster mode
//   DEBUG RELOAD NOSAVE|NOFLUSH|MERGE      loads an RDB file the stream never
//                                   carried (plain DEBUG RELOAD passes: it
//                                   saves first, so it loads the same data)
//   DEBUG LOADAOF                   empties the data and loads the AOF files
//   DEBUG CHANGE-REPL-ID            starts a new replication history
//   DEBUG POPULATE                  creates keys the stream never carries
//   DEBUG REPLICATE cmd...          streams a command the upstream never ran
//
// SYNC/PSYNC are the session's own case (durability.allow_replica_sync);
// SHUTDOWN and DEBUG RESTART are an upstream restart the proxy recovers from.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace dp::commands {

// Why `args` (a whole request, args[0] the command) must be refused, or ""
// if it may be forwarded.
std::string history_refusal(const std::vector<std::string_view>& args);

}  // namespace dp::commands
