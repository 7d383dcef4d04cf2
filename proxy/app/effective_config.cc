#include "proxy/app/effective_config.h"

#include "config/schema.h"
#include "proxy/base/json.h"

namespace dp {

std::vector<std::pair<std::string, std::string>> effective_config(const config::Config& c) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const config::Key& k : config::keys()) {
    if (k.kind == config::KeyKind::inline_secret) continue;  // exists only to be refused
    out.emplace_back(std::string(k.name), config::format_value(k, c));
  }
  out.emplace_back("upstream.password", c.upstream_password.empty() ? "none" : "set");
  out.emplace_back("admin.token", c.admin_token.empty() ? "none" : "set");
  return out;
}

std::string effective_config_line(const config::Config& c) {
  std::string line;
  for (const auto& [key, value] : effective_config(c)) {
    if (!line.empty()) line += ' ';
    line += key;
    line += '=';
    bool quote = value.empty();
    for (char ch : value) quote = quote || static_cast<unsigned char>(ch) <= ' ' || ch == '"' || ch == '\\' || ch == '=';
    line += quote ? json_quoted(value) : value;
  }
  return line;
}

std::string effective_config_json(const config::Config& c) {
  std::string out = "{";
  for (const auto& [key, value] : effective_config(c)) {
    if (out.size() > 1) out += ',';
    out += json_quoted(key) + ":" + json_quoted(value);
  }
  return out + "}";
}

}  // namespace dp
