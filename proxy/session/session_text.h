// An integer argument or reply element as the server reads it (the whole
// text, decimal), shared by the request path (session_requests.cc) and the
// reply path (session_replies.cc).
#pragma once

#include <charconv>
#include <string_view>

namespace dp::session_text {

inline bool parse_int(std::string_view s, long long* out) {
  if (s.empty()) return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

}  // namespace dp::session_text
