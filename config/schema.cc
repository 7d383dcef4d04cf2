#include "config/schema.h"

#include <type_traits>

#include "config/value_text.h"

namespace dp::config {
namespace {

constexpr uint64_t kMs = 1000;
constexpr uint64_t kSec = 1000000;
constexpr uint64_t kKb = 1ull << 10, kGb = 1ull << 30;
constexpr uint64_t kUnbounded = INT64_MAX;  // Valkey's limits are signed 64-bit

const std::vector<Section> kSections = {
    {"listen", "Where clients connect: point them here instead of at Valkey."},
    {"upstream",
     "The Valkey (or Redis) server the proxy forwards to and replicates from.\n"
     "Secrets are never written inline: set password_file (a file holding the\n"
     "password; trailing newlines are ignored) or password_env (the name of an\n"
     "environment variable), not both."},
    {"limits",
     "Request limits (defaults match Valkey) and memory bounds.  Past a memory\n"
     "bound the proxy stops reading from clients (TCP backpressure); it never\n"
     "drops data and never closes a healthy client."},
    {"durability", "When replies are released to clients."},
    {"log", "The durable log: segment files of Valkey's replication stream."},
    {"checkpoint",
     "Checkpoints (RDB snapshots) bound the log: a new one is taken when the log\n"
     "since the last one passes max_log_bytes or interval; older segments are\n"
     "then deleted.  A checkpoint is the upstream's own snapshot, received on a\n"
     "second replica connection (PSYNC ? -1) while clients are served.  Ask for\n"
     "one with POST /checkpoint on the admin port or `durable-proxy --checkpoint`.\n"
     "Disk use: about max_log_bytes + two checkpoints + three log segments."},
    {"recovery", "Putting acknowledged writes back after Valkey lost its data."},
    {"admin",
     "HTTP endpoints: /metrics, /healthz, /readyz, /status, POST /checkpoint.\n"
     "A token (token_file or token_env, never inline) guards the endpoints;\n"
     "none set = no authentication."},
    {"logging", "The proxy's own messages."},
    {"shutdown", "SIGTERM/SIGINT: stop accepting, let held replies finish, final fsync."},
};

const std::vector<Key> kKeys = {
    {.name = "listen.address", .kind = KeyKind::host_port, .field = &Config::listen,
     .help = "Address clients connect to.", .min = 1},
    {.name = "listen.max_clients", .kind = KeyKind::uint, .field = &Config::max_clients,
     .help = "Most client connections at once; more are refused.", .min = 1, .max = 1000000},

    {.name = "upstream.address", .kind = KeyKind::host_port, .field = &Config::upstream,
     .help = "Address of the Valkey server.", .min = 1},
    {.name = "upstream.username", .kind = KeyKind::string, .field = &Config::upstream_username,
     .help = "ACL user for the proxy's own connections (\"\" = the default user)."},
    {.name = "upstream.password", .kind = KeyKind::inline_secret, .field = {},
     .help = "inline passwords are not accepted: put the password in a file named by "
             "upstream.password_file or in an environment variable named by upstream.password_env"},
    {.name = "upstream.password_file", .kind = KeyKind::string, .field = &Config::upstream_password_file,
     .help = "File holding the password (\"\" = none)."},
    {.name = "upstream.password_env", .kind = KeyKind::string, .field = &Config::upstream_password_env,
     .help = "Environment variable holding the password (\"\" = none)."},
    {.name = "upstream.connect_timeout", .kind = KeyKind::duration, .field = &Config::connect_timeout_ms,
     .help = "Time allowed to connect to the upstream.", .min = 1, .max = 600000, .unit_us = kMs},
    {.name = "upstream.sharing", .kind = KeyKind::choice, .field = &Config::sharing,
     .help = "auto = clients that hold no connection state (no MULTI, SELECT, AUTH,\n"
             "HELLO, subscriptions, blocking commands...) send their commands over a\n"
             "few shared upstream connections, pipelined; a client moves to its own\n"
             "connection before its first command that needs one.  Shared connections\n"
             "never authenticate: they have the rights of a new connection (the\n"
             "default user), and are used only while a new connection needs no AUTH\n"
             "(checked every second).  off = one upstream connection per client.",
     .choices = {"auto", "off"}},
    {.name = "upstream.shared_connections", .kind = KeyKind::uint, .field = &Config::shared_connections,
     .help = "Shared upstream connections (sharing: auto); clients are spread over them.", .min = 1,
     .max = 64},

    {.name = "limits.max_bulk_len", .kind = KeyKind::size, .field = &Config::max_bulk_len,
     .help = "Longest bulk string in a request (Valkey's proto-max-bulk-len).", .min = kKb,
     .max = kUnbounded},
    {.name = "limits.max_inline_len", .kind = KeyKind::size, .field = &Config::max_inline_len,
     .help = "Longest inline (non-RESP) request line.", .min = kKb, .max = kUnbounded},
    {.name = "limits.max_multibulk_len", .kind = KeyKind::uint, .field = &Config::max_multibulk_len,
     .help = "Most arguments in one request.", .min = 1, .max = INT32_MAX},
    {.name = "limits.client_buffer", .kind = KeyKind::size, .field = &Config::client_buffer_bytes,
     .help = "Per client: held replies plus unsent output before backpressure.", .min = kKb,
     .max = kUnbounded},
    {.name = "limits.total_held", .kind = KeyKind::size, .field = &Config::total_held_bytes,
     .help = "All clients: held reply bytes before backpressure.", .min = kKb, .max = kUnbounded},

    {.name = "durability.mode", .kind = KeyKind::choice, .field = &Config::durability,
     .help = "always = hold each reply until the data it depends on is fsynced; off = never hold.",
     .choices = {"always", "off"}},
    {.name = "durability.hold_timeout", .kind = KeyKind::duration, .field = &Config::hold_timeout_ms,
     .help = "A reply that cannot become durable in this time gets an error instead.", .min = 1,
     .max = 86400000, .unit_us = kMs},
    {.name = "durability.trust_script_keys", .kind = KeyKind::boolean, .field = &Config::trust_script_keys,
     .help = "Trust scripts and functions to touch only the keys they declare."},
    {.name = "durability.allow_replica_sync", .kind = KeyKind::boolean, .field = &Config::allow_replica_sync,
     .help = "Let clients run SYNC/PSYNC through the proxy.  Such a replica receives\n"
             "writes before they are durable (nothing on that pipe is held): turn it on\n"
             "only for replication between proxied servers (cluster replicas)."},
    {.name = "durability.max_unsynced", .kind = KeyKind::size, .field = &Config::max_unsynced_bytes,
     .help = "Stream bytes received but not yet fsynced before backpressure.", .min = kKb,
     .max = kUnbounded},

    {.name = "log.dir", .kind = KeyKind::string, .field = &Config::log_dir,
     .help = "Directory of segments and checkpoints (created if missing).", .min = 1},
    {.name = "log.segment_size", .kind = KeyKind::size, .field = &Config::segment_bytes,
     .help = "Size of one preallocated segment file.", .min = 4 * kKb, .max = 16 * kGb},
    {.name = "log.commit_delay_us", .kind = KeyKind::uint, .field = &Config::commit_delay_us,
     .help = "Microseconds to wait for a bigger batch before each fsync (0 = none).", .min = 0,
     .max = 1000000},
    {.name = "log.fsync_overlap", .kind = KeyKind::uint, .field = &Config::fsync_overlap,
     .help = "Group commits whose fsync may be in flight at once: a write that arrives\n"
             "during an fsync gets its own at once instead of waiting for that one\n"
             "(1 = one fsync at a time).  One writer thread each.",
     .min = 1, .max = 16},

    {.name = "checkpoint.max_log_bytes", .kind = KeyKind::size, .field = &Config::checkpoint_max_log_bytes,
     .help = "Log bytes since the last checkpoint that trigger a new one.", .min = kKb,
     .max = kUnbounded},
    {.name = "checkpoint.interval", .kind = KeyKind::duration, .field = &Config::checkpoint_interval_s,
     .help = "Time between checkpoints (0s = only by size or on demand); skipped if the log grew by < 4kb.",
     .min = 0,
     .max = 7 * 86400, .unit_us = kSec},

    {.name = "recovery.restore_listen", .kind = KeyKind::host_port, .field = &Config::restore_listen,
     .help = "Where the proxy serves Valkey its data during a restore.",
     .min = 0},
    {.name = "recovery.node_data_dir", .kind = KeyKind::string, .field = &Config::node_data_dir,
     .help = "Cluster nodes only: the node's data directory (its `dir`) as this proxy sees it,\n"
             "where a restore writes the AOF the node loads (empty = the path the node reports).",
     .min = 0},
    {.name = "recovery.on_unknown_dataset", .kind = KeyKind::choice, .field = &Config::on_unknown_dataset,
     .help = "Upstream holds keys of another history: refuse to start, restore over them, adopt them.",
     .choices = {"refuse", "restore", "adopt"}},

    {.name = "admin.enabled", .kind = KeyKind::boolean, .field = &Config::admin_enabled,
     .help = "Serve the HTTP endpoints."},
    {.name = "admin.address", .kind = KeyKind::host_port, .field = &Config::admin,
     .help = "Address of the HTTP endpoints.", .min = 1},
    {.name = "admin.token", .kind = KeyKind::inline_secret, .field = {},
     .help = "inline tokens are not accepted: put the token in a file named by admin.token_file "
             "or in an environment variable named by admin.token_env"},
    {.name = "admin.token_file", .kind = KeyKind::string, .field = &Config::admin_token_file,
     .help = "File holding the token (\"\" = none)."},
    {.name = "admin.token_env", .kind = KeyKind::string, .field = &Config::admin_token_env,
     .help = "Environment variable holding the token (\"\" = none)."},

    {.name = "logging.level", .kind = KeyKind::choice, .field = &Config::log_level,
     .help = "Least severe message written.", .choices = {"debug", "info", "warn", "error"}},
    {.name = "logging.format", .kind = KeyKind::choice, .field = &Config::log_format,
     .help = "text = one line per message; json = one JSON object per line.",
     .choices = {"text", "json"}},
    {.name = "logging.file", .kind = KeyKind::string, .field = &Config::log_file,
     .help = "File to append messages to (\"\" = stderr); reopened on SIGHUP."},

    {.name = "shutdown.timeout", .kind = KeyKind::duration, .field = &Config::shutdown_timeout_ms,
     .help = "Longest wait for held replies to finish.", .min = 0, .max = 3600000, .unit_us = kMs},
};

std::string quoted(const std::string& s) { return "'" + s + "'"; }

std::string join_choices(const Key& key) {
  std::string out;
  for (auto c : key.choices) out += (out.empty() ? "" : ", ") + std::string(c);
  return out;
}

// "from A to B" or "of at least A", with values printed by `fmt`.
template <typename Fmt>
std::string range_text(const Key& key, Fmt fmt) {
  if (key.max >= kUnbounded) return "of at least " + fmt(key.min);
  return "from " + fmt(key.min) + " to " + fmt(key.max);
}

std::string set_number(const Key& key, uint64_t v, const std::string& text, Config* c) {
  if (v < key.min || v > key.max) return "expected " + describe_values(key) + ", got " + quoted(text);
  if (auto p = std::get_if<uint32_t Config::*>(&key.field)) {
    c->*(*p) = static_cast<uint32_t>(v);  // the table keeps max within 32 bits for these
  } else if (auto q = std::get_if<uint64_t Config::*>(&key.field)) {
    c->*(*q) = v;
  }
  return "";
}

uint64_t get_number(const Key& key, const Config& c) {
  if (auto p = std::get_if<uint32_t Config::*>(&key.field)) return c.*(*p);
  if (auto q = std::get_if<uint64_t Config::*>(&key.field)) return c.*(*q);
  return 0;
}

}  // namespace

const std::vector<Section>& sections() { return kSections; }
const std::vector<Key>& keys() { return kKeys; }

const Key* find_key(std::string_view dotted) {
  for (const auto& k : kKeys)
    if (k.name == dotted) return &k;
  return nullptr;
}

std::string describe_values(const Key& key) {
  switch (key.kind) {
    case KeyKind::string: return key.min > 0 ? "a non-empty string" : "a string";
    case KeyKind::boolean: return "true or false";
    case KeyKind::uint:
      return "a whole number " + range_text(key, [](uint64_t v) { return std::to_string(v); });
    case KeyKind::size: return "a size " + range_text(key, format_size);
    case KeyKind::duration:
      return "a duration " + range_text(key, [&](uint64_t v) { return format_duration(v, key.unit_us); });
    case KeyKind::choice: return "one of " + join_choices(key);
    case KeyKind::host_port: return key.min == 0 ? "HOST:PORT (port 0 = any free port)" : "HOST:PORT";
    case KeyKind::inline_secret: return "nothing (not accepted)";
  }
  return "";
}

std::string set_value(const Key& key, const std::string& text, Config* c) {
  std::string err;
  switch (key.kind) {
    case KeyKind::string:
      if (text.size() < key.min) return "expected " + describe_values(key) + ", got ''";
      c->*std::get<std::string Config::*>(key.field) = text;
      return "";
    case KeyKind::boolean: return parse_bool_text(text, &(c->*std::get<bool Config::*>(key.field)));
    case KeyKind::uint:
    case KeyKind::size:
    case KeyKind::duration: {
      uint64_t v = 0;
      if (key.kind == KeyKind::uint && !parse_uint_text(text, &v).empty())
        return "expected " + describe_values(key) + ", got " + quoted(text);
      if (key.kind == KeyKind::size) err = parse_size_text(text, &v);
      if (key.kind == KeyKind::duration) err = parse_duration_text(text, key.unit_us, &v);
      if (!err.empty()) return err;
      return set_number(key, v, text, c);
    }
    case KeyKind::choice: {
      for (size_t i = 0; i < key.choices.size(); ++i) {
        if (text != key.choices[i]) continue;
        std::visit(
            [&](auto member) {
              using M = decltype(member);
              if constexpr (std::is_same_v<M, std::string Config::*>) {
                c->*member = text;
              } else if constexpr (std::is_same_v<M, DurabilityMode Config::*> ||
                                   std::is_same_v<M, OnUnknownDataset Config::*> ||
                                   std::is_same_v<M, UpstreamSharing Config::*>) {
                using E = std::remove_reference_t<decltype(c->*member)>;
                c->*member = static_cast<E>(i);
              }
            },
            key.field);
        return "";
      }
      return "expected " + describe_values(key) + ", got " + quoted(text);
    }
    case KeyKind::host_port: {
      HostPort hp;
      err = parse_host_port(text, &hp);
      if (!err.empty()) return err;
      if (hp.port < key.min) return "port 0 (any free port) is not allowed here, got " + quoted(text);
      c->*std::get<HostPort Config::*>(key.field) = hp;
      return "";
    }
    case KeyKind::inline_secret: return std::string(key.help);
  }
  return "unhandled key kind";
}

std::string format_value(const Key& key, const Config& c) {
  switch (key.kind) {
    case KeyKind::string: return c.*std::get<std::string Config::*>(key.field);
    case KeyKind::boolean: return c.*std::get<bool Config::*>(key.field) ? "true" : "false";
    case KeyKind::uint: return std::to_string(get_number(key, c));
    case KeyKind::size: return format_size(get_number(key, c));
    case KeyKind::duration: return format_duration(get_number(key, c), key.unit_us);
    case KeyKind::choice:
      return std::visit(
          [&](auto member) -> std::string {
            using M = decltype(member);
            if constexpr (std::is_same_v<M, std::string Config::*>) {
              return c.*member;
            } else if constexpr (std::is_same_v<M, DurabilityMode Config::*> ||
                                 std::is_same_v<M, OnUnknownDataset Config::*> ||
                                   std::is_same_v<M, UpstreamSharing Config::*>) {
              size_t i = static_cast<size_t>(c.*member);
              return i < key.choices.size() ? std::string(key.choices[i]) : "?";
            } else {
              return "?";
            }
          },
          key.field);
    case KeyKind::host_port: return (c.*std::get<HostPort Config::*>(key.field)).str();
    case KeyKind::inline_secret: return "";
  }
  return "";
}

}  // namespace dp::config
