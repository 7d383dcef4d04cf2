// Generates the text of the repository's proxy.yaml from the key table, so
// the documented defaults cannot drift from the code (a unit test compares).
#include <sstream>

#include "config/schema.h"

namespace dp::config {
namespace {

constexpr std::string_view kHeader =
    "# durable-proxy configuration.\n"
    "#\n"
    "# Every key is listed with its default value: remove a line (or a whole\n"
    "# section) to keep the default.  Unknown keys, wrong types and out-of-range\n"
    "# values are errors that name the key and file:line:column.\n"
    "# Command-line flags override this file: --listen, --upstream, --admin,\n"
    "# --log-dir, --durability, --sharing (see durable-proxy --help).\n"
    "# Relative paths (log.dir, *_file, logging.file) are taken relative to the\n"
    "# working directory the proxy starts in, as with most daemons.\n"
    "# Sizes: 4096 (bytes), 64kb, 64mb, 1gb; kb/mb/gb count in 1024s and k/m/g\n"
    "# in 1000s, as in Valkey.  Durations: 500us, 250ms, 10s, 5m, 1h.\n"
    "# This file is generated from config/schema.cc; a unit test checks they agree.\n";

void comment_lines(std::ostringstream& out, std::string_view text, std::string_view indent) {
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    out << indent << "# " << text.substr(start, end - start) << "\n";
    start = end + 1;
  }
}

std::string yaml_quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

std::string documented_yaml() {
  const Config defaults;
  std::ostringstream out;
  out << kHeader;
  for (const auto& section : sections()) {
    out << "\n";
    comment_lines(out, section.help, "");
    out << section.name << ":\n";
    for (const auto& key : keys()) {
      if (key.section() != section.name) continue;
      if (key.kind == KeyKind::inline_secret) {
        out << "  # (no '" << key.leaf() << "' key: secrets are never written inline)\n";
        continue;
      }
      comment_lines(out, key.help, "  ");
      if (key.kind != KeyKind::string && key.kind != KeyKind::boolean)
        out << "  # Accepts " << describe_values(key) << ".\n";
      std::string value = format_value(key, defaults);
      if (key.kind == KeyKind::string || key.kind == KeyKind::host_port) value = yaml_quoted(value);
      out << "  " << key.leaf() << ": " << value << "\n";
    }
  }
  return out.str();
}

}  // namespace dp::config
