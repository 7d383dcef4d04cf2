// The one reader of INFO replies ("# Section" headers, "key:value" lines,
// CRLF or LF line ends).  Pure; any thread.
#pragma once

#include <optional>
#include <string_view>

namespace dp {

// Calls fn(key, value) for every "key:value" line of `info`, in order.  The
// value is everything after the first ':' (a trailing '\r' dropped); header
// lines ("# Replication"), blank lines and lines without ':' are skipped.
template <class Fn>
void for_each_info_field(std::string_view info, Fn&& fn) {
  while (!info.empty()) {
    size_t eol = info.find('\n');
    std::string_view line = info.substr(0, eol);
    info.remove_prefix(eol == std::string_view::npos ? info.size() : eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t colon = line.find(':');
    if (line.empty() || line[0] == '#' || colon == std::string_view::npos) continue;
    fn(line.substr(0, colon), line.substr(colon + 1));
  }
}

// The value of the first `key` line (key without the ':'); nullopt when no
// line has it.  The view points into `info`.
std::optional<std::string_view> info_field(std::string_view info, std::string_view key);

}  // namespace dp
