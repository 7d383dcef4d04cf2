#include "proxy/base/info_fields.h"

namespace dp {

std::optional<std::string_view> info_field(std::string_view info, std::string_view key) {
  std::optional<std::string_view> found;
  for_each_info_field(info, [&](std::string_view k, std::string_view v) {
    if (!found && k == key) found = v;
  });
  return found;
}

}  // namespace dp
