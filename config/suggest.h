// Helpers for naming keys in errors: which sections exist and the
// "(did you mean ...?)" hint for an unknown key, all from the key table.
// Pure functions, any thread.
#pragma once

#include <string>

namespace dp::config {

bool is_section(const std::string& name);
// "address, max_clients" for section "listen".
std::string leaves_of(const std::string& section);
// Hints start with a space ("" when nothing is close): " (did you mean 'upstream'?)".
std::string suggest_for_section(const std::string& unknown);
std::string suggest_for_leaf(const std::string& section, const std::string& unknown);

}  // namespace dp::config
