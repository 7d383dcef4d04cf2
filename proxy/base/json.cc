#include "proxy/base/json.h"

namespace dp {

void append_json_escaped(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (u < 0x20) {
      out->append("\\u00");
      out->push_back(kHex[u >> 4]);
      out->push_back(kHex[u & 0xf]);
    } else {
      out->push_back(c);
    }
  }
}

std::string json_quoted(std::string_view s) {
  std::string out = "\"";
  append_json_escaped(&out, s);
  out.push_back('"');
  return out;
}

}  // namespace dp
