// parse_command_line / usage_text.  The override flags are tied to keys of
// the table, so a flag's value is checked exactly like the key in proxy.yaml.
#include <cstring>

#include "config/config.h"
#include "config/schema.h"

namespace dp::config {
namespace {

struct ValueFlag {
  const char* name;     // "--listen"
  const char* key;      // table key it overrides; nullptr for --config
  const char* metavar;  // "HOST:PORT"
  void (*store)(const Config& parsed, CommandLine* out);
};

const ValueFlag kValueFlags[] = {
    {"--config", nullptr, "FILE", nullptr},
    {"--listen", "listen.address", "HOST:PORT",
     [](const Config& c, CommandLine* out) { out->overrides.listen = c.listen; }},
    {"--upstream", "upstream.address", "HOST:PORT",
     [](const Config& c, CommandLine* out) { out->overrides.upstream = c.upstream; }},
    {"--admin", "admin.address", "HOST:PORT",
     [](const Config& c, CommandLine* out) { out->overrides.admin = c.admin; }},
    {"--log-dir", "log.dir", "DIR", [](const Config& c, CommandLine* out) { out->overrides.log_dir = c.log_dir; }},
    {"--durability", "durability.mode", "always|off",
     [](const Config& c, CommandLine* out) { out->overrides.durability = c.durability; }},
    {"--sharing", "upstream.sharing", "auto|off",
     [](const Config& c, CommandLine* out) { out->overrides.sharing = c.sharing; }},
};

struct SwitchFlag {
  const char* name;
  const char* help;
  bool CommandLine::*field;
};

const SwitchFlag kSwitches[] = {
    {"--check-config", "read and check the configuration, print its summary, exit 0 (1 on error)",
     &CommandLine::check_config},
    {"--checkpoint",
     "ask the running proxy (POST /checkpoint on admin.address, or --admin) to take a checkpoint now; "
     "exit 0 when it started, 1 when refused, 2 when no proxy answered",
     &CommandLine::checkpoint},
    {"--version", "print the version and exit", &CommandLine::version},
    {"--help", "print this help and exit (also -h)", &CommandLine::help},
};

std::string apply_value(const ValueFlag& flag, const std::string& value, CommandLine* out) {
  if (!flag.key) {
    if (value.empty()) return std::string(flag.name) + ": expected a file name, got ''";
    out->config_path = value;
    out->config_path_given = true;
    return "";
  }
  Config parsed;
  std::string err = set_value(*find_key(flag.key), value, &parsed);
  if (!err.empty()) return std::string(flag.name) + ": " + err;
  flag.store(parsed, out);
  return "";
}

}  // namespace

std::string parse_command_line(int argc, char** argv, CommandLine* out) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h") arg = "--help";
    std::string name = arg, value;
    bool has_inline_value = false;
    if (size_t eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_inline_value = true;
    }
    bool known = false;
    for (const auto& flag : kValueFlags) {
      if (name != flag.name) continue;
      known = true;
      if (!has_inline_value) {
        if (i + 1 >= argc || std::strncmp(argv[i + 1], "--", 2) == 0)
          return name + " needs a value (" + flag.metavar + ")";
        value = argv[++i];
      }
      std::string err = apply_value(flag, value, out);
      if (!err.empty()) return err;
    }
    for (const auto& sw : kSwitches) {
      if (name != sw.name) continue;
      known = true;
      if (has_inline_value) return name + " takes no value, got '" + value + "'";
      out->*sw.field = true;
    }
    if (known) continue;
    if (arg.rfind("-", 0) == 0) return "unknown option '" + name + "' (see --help)";
    return "unexpected argument '" + arg + "' (the config file is given with --config FILE; see --help)";
  }
  return "";
}

const char* usage_text() {
  static const std::string text = [] {
    std::string t =
        "Usage: durable-proxy [--config FILE] [options]\n"
        "\n"
        "A transparent durability proxy for Valkey: clients connect to the proxy,\n"
        "which forwards to Valkey and releases each reply once the writes it\n"
        "depends on are fsynced in its own log.\n"
        "\n"
        "Options (also accepted as --option=value):\n";
    const auto line = [&](std::string left, const std::string& help) {
      left = "  " + left;
      if (left.size() < 28) left.resize(28, ' ');
      else left += "  ";
      t += left + help + "\n";
    };
    for (const auto& flag : kValueFlags) {
      std::string help = flag.key ? "overrides " + std::string(flag.key) + " in the config file"
                                  : "the config file (default: proxy.yaml in the working directory)";
      if (flag.key && std::strcmp(flag.name, "--admin") == 0) help += " (and enables admin)";
      line(std::string(flag.name) + " " + flag.metavar, help);
    }
    for (const auto& sw : kSwitches) line(sw.name, sw.help);
    return t;
  }();
  return text.c_str();
}

}  // namespace dp::config
