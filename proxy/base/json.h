// The one JSON string escaper (log lines, /status, admin answers, the
// effective configuration).  Pure; any thread.
#pragma once

#include <string>
#include <string_view>

namespace dp {

// Appends `s` as the inside of a JSON string: '"' and '\' get a backslash,
// every byte below 0x20 becomes \u00XX; other bytes pass unchanged (UTF-8
// stays UTF-8; it is not validated).
void append_json_escaped(std::string* out, std::string_view s);

// `s` escaped and in double quotes: a complete JSON string.
std::string json_quoted(std::string_view s);

}  // namespace dp
