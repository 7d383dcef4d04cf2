// Strict decimal parsing of protocol numbers.  Pure; any thread.
#pragma once

#include <charconv>
#include <cstdint>
#include <string_view>

namespace dp {

// True when `s` is an unsigned decimal that fits uint64_t, and nothing else
// (no sign, no spaces, not empty).
inline bool parse_u64(std::string_view s, uint64_t* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace dp
