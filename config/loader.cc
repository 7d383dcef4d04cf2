// load_file / load_string: YAML -> Config through the key table, then
// command-line overrides, secrets and checks that involve several keys.
// yaml-cpp throws; every exception is caught here and becomes error text.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>

#include <sys/stat.h>

#include <yaml-cpp/yaml.h>

#include "config/config.h"
#include "config/schema.h"
#include "config/suggest.h"

namespace dp::config {
namespace {

std::string quoted(const std::string& s) { return "'" + s + "'"; }

// Reads a whole file; returns "" or strerror text.
std::string read_whole_file(const std::string& path, std::string* out) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return std::strerror(errno);
  char buf[8192];
  size_t n;
  out->clear();
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out->append(buf, n);
  int err = std::ferror(f) ? errno : 0;
  std::fclose(f);
  return err ? std::strerror(err) : "";
}

const char* node_kind(const YAML::Node& n) {
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  if (n.IsNull()) return "nothing";
  return "a value";
}

class Loader {
 public:
  Loader(std::string name, const Overrides& overrides) : name_(std::move(name)), overrides_(overrides) {}

  // Returns "" or the error text.
  std::string run(const YAML::Node& root) {
    std::string err = read_root(root);
    if (err.empty()) err = apply_overrides();
    if (err.empty()) err = resolve_secret("upstream.password_file", "upstream.password_env", &config.upstream_password);
    if (err.empty()) err = resolve_secret("admin.token_file", "admin.token_env", &config.admin_token);
    if (err.empty()) err = check_combinations();
    return err;
  }

  Config config;

 private:
  std::string at(const YAML::Mark& m) const {
    if (m.is_null()) return name_;
    return name_ + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
  }
  // Where `key`'s effective value came from, for errors found after parsing.
  std::string where(const std::string& key) const {
    auto it = places_.find(key);
    return it != places_.end() ? it->second : name_ + " (default)";
  }
  std::string fail(const std::string& place, const std::string& key, const std::string& why) const {
    return place + ": " + key + ": " + why;
  }

  std::string read_root(const YAML::Node& root) {
    if (root.IsNull()) return "";  // empty file: all defaults
    if (!root.IsMap())
      return at(root.Mark()) + ": expected a mapping of sections (listen:, upstream:, ...), got " +
             node_kind(root);
    std::map<std::string, YAML::Mark> seen;
    for (const auto& entry : root) {  // by value: yaml-cpp's operator-> yields a dangling proxy
      const YAML::Node& k = entry.first;
      if (!k.IsScalar()) return at(k.Mark()) + ": expected a section name, got " + node_kind(k);
      const std::string section = k.Scalar();
      if (auto prev = seen.find(section); prev != seen.end())
        return at(k.Mark()) + ": duplicate key " + quoted(section) + " (first at line " +
               std::to_string(prev->second.line + 1) + ")";
      seen.emplace(section, k.Mark());
      if (!is_section(section))
        return at(k.Mark()) + ": unknown key " + quoted(section) + suggest_for_section(section);
      std::string err = read_section(section, entry.second);
      if (!err.empty()) return err;
    }
    return "";
  }

  std::string read_section(const std::string& section, const YAML::Node& node) {
    if (node.IsNull()) return "";
    if (!node.IsMap())
      return fail(at(node.Mark()), section,
                  "expected a mapping of keys (" + leaves_of(section) + "), got " + node_kind(node));
    std::map<std::string, YAML::Mark> seen;
    for (const auto& entry : node) {
      const YAML::Node& k = entry.first;
      if (!k.IsScalar()) return at(k.Mark()) + ": expected a key name, got " + node_kind(k);
      const std::string dotted = section + "." + k.Scalar();
      if (auto prev = seen.find(dotted); prev != seen.end())
        return at(k.Mark()) + ": duplicate key " + quoted(dotted) + " (first at line " +
               std::to_string(prev->second.line + 1) + ")";
      seen.emplace(dotted, k.Mark());
      const Key* key = find_key(dotted);
      if (!key) return at(k.Mark()) + ": unknown key " + quoted(dotted) + suggest_for_leaf(section, k.Scalar());
      std::string err = read_value(*key, k, entry.second);
      if (!err.empty()) return err;
    }
    return "";
  }

  std::string read_value(const Key& key, const YAML::Node& k, const YAML::Node& v) {
    const std::string name(key.name);
    if (key.kind == KeyKind::inline_secret) return fail(at(k.Mark()), name, std::string(key.help));
    // A key with nothing after the colon: the value's mark is the next token,
    // so point at the key instead.
    if (v.IsNull() && key.kind != KeyKind::string)
      return fail(at(k.Mark()), name, "has no value; expected " + describe_values(key));
    if (!v.IsNull() && !v.IsScalar())
      return fail(at(v.Mark()), name, "expected " + describe_values(key) + ", got " + node_kind(v));
    const std::string text = v.IsNull() ? "" : v.Scalar();
    std::string err = set_value(key, text, &config);
    if (!err.empty()) return fail(at(v.IsNull() ? k.Mark() : v.Mark()), name, err);
    places_[name] = at(v.IsNull() ? k.Mark() : v.Mark());
    return "";
  }

  std::string apply_overrides() {
    const auto from_flag = [&](const char* key, const char* flag) {
      places_[key] = std::string("command line ") + flag;
    };
    if (overrides_.listen) {
      config.listen = *overrides_.listen;
      from_flag("listen.address", "--listen");
    }
    if (overrides_.upstream) {
      config.upstream = *overrides_.upstream;
      from_flag("upstream.address", "--upstream");
    }
    if (overrides_.admin) {  // naming an admin address asks for the endpoints
      config.admin = *overrides_.admin;
      config.admin_enabled = true;
      from_flag("admin.address", "--admin");
      from_flag("admin.enabled", "--admin");
    }
    if (overrides_.log_dir) {
      config.log_dir = *overrides_.log_dir;
      from_flag("log.dir", "--log-dir");
    }
    if (overrides_.durability) {
      config.durability = *overrides_.durability;
      from_flag("durability.mode", "--durability");
    }
    if (overrides_.sharing) {
      config.sharing = *overrides_.sharing;
      from_flag("upstream.sharing", "--sharing");
    }
    return "";
  }

  // Reads the secret named by `file_key` or `env_key` (at most one set).
  std::string resolve_secret(const std::string& file_key, const std::string& env_key, std::string* out) {
    const std::string file = format_value(*find_key(file_key), config);
    const std::string env = format_value(*find_key(env_key), config);
    out->clear();
    if (!file.empty() && !env.empty())
      return fail(where(env_key), env_key, "set only one of " + file_key + " and " + env_key);
    if (!file.empty()) {
      std::string err = read_whole_file(file, out);
      if (!err.empty()) return fail(where(file_key), file_key, "cannot read " + quoted(file) + ": " + err);
      while (!out->empty() && (out->back() == '\n' || out->back() == '\r')) out->pop_back();
      if (out->empty()) return fail(where(file_key), file_key, "file " + quoted(file) + " is empty");
    } else if (!env.empty()) {
      const char* value = std::getenv(env.c_str());
      if (!value) return fail(where(env_key), env_key, "environment variable " + quoted(env) + " is not set");
      *out = value;
      if (out->empty()) return fail(where(env_key), env_key, "environment variable " + quoted(env) + " is empty");
    }
    return "";
  }

  std::string check_combinations() {
    const auto same = [](const HostPort& a, const HostPort& b) { return a.host == b.host && a.port == b.port; };
    if (same(config.listen, config.upstream))
      return fail(where("listen.address"), "listen.address",
                  "is the same as upstream.address (" + config.upstream.str() +
                      "): the proxy would forward to itself");
    if (config.admin_enabled && same(config.listen, config.admin))
      return fail(where("admin.address"), "admin.address",
                  "is the same as listen.address (" + config.listen.str() + ")");
    return "";
  }

  std::string name_;
  const Overrides& overrides_;
  std::map<std::string, std::string> places_;  // key -> "file:line:col" or "command line --flag"
};

}  // namespace

LoadResult load_string(const std::string& yaml, const std::string& name, const Overrides& overrides) {
  LoadResult result;
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    const std::string place =
        e.mark.is_null() ? name : name + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1);
    result.error = place + ": YAML syntax error: " + e.msg;
    return result;
  }
  Loader loader(name, overrides);
  try {
    result.error = loader.run(root);
  } catch (const YAML::Exception& e) {  // not expected: every access above is checked
    result.error = name + ": " + e.what();
  }
  if (result.error.empty()) {
    loader.config.source = name;
    result.config = std::move(loader.config);
  }
  return result;
}

LoadResult load_file(const std::string& path, const Overrides& overrides) {
  std::string text;
  std::string err = read_whole_file(path, &text);
  if (!err.empty()) {
    LoadResult result;
    result.error = "cannot read config file " + quoted(path) + ": " + err;
    return result;
  }
  return load_string(text, path, overrides);
}

LoadResult load_for_command_line(const CommandLine& cl, std::string* source) {
  struct stat st;
  if (cl.config_path_given || ::stat(cl.config_path.c_str(), &st) == 0) {
    *source = cl.config_path;
    return load_file(cl.config_path, cl.overrides);
  }
  *source = kBuiltInDefaults;
  return load_string("{}\n", "(built-in defaults)", cl.overrides);
}

}  // namespace dp::config
