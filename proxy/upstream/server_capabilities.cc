#include "proxy/upstream/server_capabilities.h"

#include <charconv>

#include "proxy/base/info_fields.h"

namespace dp::upstream {

namespace {

// "7.2.4" -> true when >= 7.2 (the first version that knows REPLCONF ... FACK).
bool version_has_fack(std::string_view v) {
  unsigned major = 0, minor = 0;
  auto dot = v.find('.');
  if (dot == std::string_view::npos) return false;
  std::from_chars(v.data(), v.data() + dot, major);
  auto rest = v.substr(dot + 1);
  std::from_chars(rest.data(), rest.data() + rest.size(), minor);
  return major > 7 || (major == 7 && minor >= 2);
}

}  // namespace

std::string info_server_replconf_version(std::string_view info) {
  auto v = info_field(info, "valkey_version");
  if (!v) return "";
  // Exactly "M.m.p", digits only: the server's version2num() rejects anything else.
  unsigned parts[3] = {0, 0, 0};
  std::string_view rest = *v;
  for (int i = 0; i < 3; ++i) {
    auto [p, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), parts[i]);
    if (ec != std::errc() || parts[i] > 255) return "";
    rest.remove_prefix(static_cast<size_t>(p - rest.data()));
    if (i < 2) {
      if (rest.empty() || rest[0] != '.') return "";
      rest.remove_prefix(1);
    }
  }
  if (!rest.empty() || parts[0] < 8) return "";
  return std::string(*v);
}

bool info_server_has_fack(std::string_view info) {
  auto field = [&](std::string_view name) { return info_field(info, name); };
  // Every Valkey descends from Redis 7.2.4 and knows FACK, whatever
  // redis_version it reports (Valkey 8.0 keeps it at 7.2.4 by design).
  if (field("valkey_version") || field("server_name") == "valkey") return true;
  auto v = field("redis_version");
  return v && version_has_fack(*v);
}

}  // namespace dp::upstream
