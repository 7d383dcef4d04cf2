// Whether one MONITOR line must be held like a write (DESIGN.md §1 rule 3).
//
// A MONITOR line shows a command's arguments: the line of a write reveals
// the written value before it is durable, so it waits like the write.  The
// line of anything else (a read, ROLE, INFO, PING, REPLCONF...) reveals no
// data that is not already visible, so it is not held.  This is also what
// breaks the feedback loop of issue 11 class 7: each ROLE probe the gate
// sends shows up as a MONITOR line; if that line needed a probe, every probe
// would cause the next one.
//
// Line format (all servers since 2.x): `+<secs>.<usecs> [<db> <addr>] "cmd" "arg"...`
// with C-style escapes inside the quotes (\" \\ \n \r \t \a \b \xHH).
#pragma once

#include <string_view>

#include "proxy/commands/command_table.h"

namespace dp::commands {

// `frame` is the whole simple-string frame, '+' to CRLF.  A line that does
// not parse is held (the safe answer).
bool monitor_line_needs_hold(const CommandTable& table, std::string_view frame);

}  // namespace dp::commands
