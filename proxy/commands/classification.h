// The answer the command table gives for one request: how its reply is held
// (DESIGN.md §1), which keys and databases it makes pending or depends on,
// and whether the session must track it (Special).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace dp::commands {

struct CommandInfo;

// The function libraries are server-wide state, not keys, but reads of them
// must wait for their changes like reads of a key: FUNCTION LOAD / DELETE /
// FLUSH / RESTORE name this pseudo key as written, FCALL_RO as read (its
// other keys are only those it declares).  The pending-key table keeps it
// in one place whatever db it is named in (gate/pending_keys.h).  A user key
// with the same bytes would only share its pending state.
inline constexpr char kFunctionLibrariesKeyBytes[] = "\0durable-proxy:function-libraries";
inline constexpr std::string_view kFunctionLibrariesKey{kFunctionLibrariesKeyBytes, sizeof kFunctionLibrariesKeyBytes - 1};

// Commands whose connection-level effect the session tracks itself.
enum class Special : uint8_t {
  none,
  select, multi, exec, discard, watch, unwatch,
  hello, auth, reset, quit,
  client_reply, client_kill, client_tracking, client_unblock,
  monitor,
  subscribe, psubscribe, ssubscribe, unsubscribe, punsubscribe, sunsubscribe,
  ping, sync, psync, replconf, info, waitaof, wait, shutdown,
  cluster_syncslots,
  eval, evalsha, fcall, eval_ro, evalsha_ro, fcall_ro,
};

enum class Kind : uint8_t {
  read,           // readonly: reply held only if one of its keys is pending
  write,          // write / may_replicate / unknown / EXEC / scripts: reply held until durable
  keyspace_read,  // reads with no keys that see the whole keyspace (KEYS, SCAN,
                  // DBSIZE, RANDOMKEY, SORT_RO BY/GET, untrusted read-only
                  // scripts, FUNCTION LIST): held like a write
  other           // reveals and changes no data (PING, CONFIG GET...): not held
};

struct Classification {
  Kind kind = Kind::write;
  Special special = Special::none;
  bool blocking = false;  // may wait for other clients: B*POP..., XREAD(GROUP) BLOCK, WAIT, WAITAOF
  // A write that makes the whole current db pending: FLUSHDB, SWAPDB, MOVE,
  // COPY ... DB, writes whose keys the specs cannot find.  Always false for
  // reads.
  bool db_wide = false;
  // Every db pending (db_wide is set too): writes whose reach is unknown --
  // FLUSHALL, DEBUG, CONFIG SET, EVAL/EVALSHA/FCALL unless
  // trust_script_keys, unknown commands, unrecognised keyless writes.
  bool all_dbs = false;
  int other_db = -1;     // MOVE / COPY ... DB target, SWAPDB's first db: pending as a whole
  int other_db2 = -1;    // SWAPDB's second db
  // Views into the args passed to classify(); valid while they are.  The
  // vector keeps its capacity across calls (no allocation in steady state).
  // For a write: the keys it makes pending; for a read: the keys it waits on.
  // EXEC carries none: its keys are those of the commands it queued.
  std::vector<std::string_view> keys;
  const CommandInfo* info = nullptr;  // nullptr = unknown command or subcommand

  void reset() {
    kind = Kind::write;
    special = Special::none;
    blocking = db_wide = all_dbs = false;
    other_db = other_db2 = -1;
    keys.clear();
    info = nullptr;
  }
};

}  // namespace dp::commands
