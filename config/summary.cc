#include "config/config.h"

namespace dp::config {

std::string summary(const Config& c) {
  std::string s = "listen=" + c.listen.str();
  s += " upstream=" + c.upstream.str();
  s += c.durability == DurabilityMode::always ? " durability=always" : " durability=off";
  s += " log.dir=" + c.log_dir;
  s += " admin=" + (c.admin_enabled ? c.admin.str() : std::string("off"));
  // Secrets: only whether they are set, never their value or length.
  s += std::string(" (password: ") + (c.upstream_password.empty() ? "none" : "set");
  if (c.admin_enabled) s += std::string(", admin token: ") + (c.admin_token.empty() ? "none" : "set");
  s += ")";
  return s;
}

}  // namespace dp::config
