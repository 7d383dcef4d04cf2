// Which commands need a connection of their own (upstream.sharing: auto).
//
// A session without connection state sends its commands over a shared
// upstream connection (proxy/session/shared_upstream.h).  Before the first
// command that reads or sets state of the connection it runs on, or that
// could hold the connection up for others, the session moves to a
// dedicated connection and keeps it:
//
//   transactions    MULTI, EXEC, DISCARD, WATCH, UNWATCH
//   state           SELECT, HELLO, AUTH, RESET, QUIT, READONLY, READWRITE,
//                   ASKING, CLIENT (every subcommand but a valid SETINFO,
//                   which the session keeps and replays: `keeps_setinfo`)
//   push and pipes  SUBSCRIBE family, MONITOR, SYNC, PSYNC, REPLCONF
//   blocking        B*POP, BLMOVE, XREAD(GROUP) BLOCK, WAIT, WAITAOF
//                   (the classification's `blocking` flag)
//   modules         every command with the `module` flag (it may block
//                   without saying so, or answer more than once)
//   other           SCRIPT DEBUG, SCRIPT KILL and FUNCTION KILL (a busy
//                   script may run on the shared connection they would
//                   queue behind), SHUTDOWN, unknown commands and
//                   subcommands (their effect is not known)
//
// Everything else only reads or writes data and answers one reply, on
// whichever connection it runs as the same user.
#pragma once

#include <string_view>
#include <vector>

#include "proxy/commands/classification.h"

namespace dp::commands {

// `args` (a whole request, classified as `cls`) must run on the client's
// own upstream connection.
bool needs_own_connection(const Classification& cls, const std::vector<std::string_view>& args);

// CLIENT SETINFO LIB-NAME|LIB-VER value with a value the server accepts
// (no spaces, newlines or other characters outside '!'..'~'), on a server
// that knows SETINFO: a shared session answers +OK itself and sends it on
// its own connection if it moves to one.
bool keeps_setinfo(const Classification& cls, const std::vector<std::string_view>& args);

}  // namespace dp::commands
