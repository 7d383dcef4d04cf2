// The effective configuration as an operator sees it: every proxy.yaml key
// (from the one key table, config/schema.h) with the value in force after
// defaults, the file and the command line.  Secrets never appear: the table
// holds only where they come from (*_file, *_env); their values are shown
// as "set" or "none".  Used by the start-up log line and /status.
// Pure; any thread.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "config/config.h"

namespace dp {

// ("listen.address", "127.0.0.1:7379"), ... in table order, then
// ("upstream.password", "set"|"none") and ("admin.token", "set"|"none").
std::vector<std::pair<std::string, std::string>> effective_config(const config::Config& c);
// key=value pairs separated by spaces; values with spaces or quotes are
// double-quoted (a log line).
std::string effective_config_line(const config::Config& c);
// A JSON object {"listen.address":"127.0.0.1:7379",...} (all values strings).
std::string effective_config_json(const config::Config& c);

}  // namespace dp
