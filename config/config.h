// The proxy's configuration: the effective values after defaults, proxy.yaml
// and command-line overrides.  Built once at start on the main thread, then
// read-only.  The one table of keys (name, type, default, range, help) lives
// in config/schema.cc; proxy.yaml at the repository root documents it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace dp::config {

struct HostPort {
  std::string host;
  uint16_t port = 0;
  std::string str() const;  // "host:port" ("[v6]:port" for IPv6)
};

enum class DurabilityMode { always, off };
enum class OnUnknownDataset { refuse, restore, adopt };
// upstream.sharing: auto = sessions without connection state share a small
// pool of upstream connections; off = one upstream connection per client.
enum class UpstreamSharing { automatic, off };

struct Config {
  std::string source;  // path of the YAML file read ("" if none)

  // listen:
  HostPort listen{"127.0.0.1", 7379};
  uint32_t max_clients = 10000;

  // upstream:
  HostPort upstream{"127.0.0.1", 6379};
  std::string upstream_username;      // the proxy's own user for control + replica links ("" = default user)
  std::string upstream_password;      // resolved from password_file / password_env; never logged
  std::string upstream_password_file; // where the password came from (as written; "" = not used)
  std::string upstream_password_env;
  uint32_t connect_timeout_ms = 2000;
  UpstreamSharing sharing = UpstreamSharing::off;
  uint32_t shared_connections = 2;  // size of the shared pool (sharing: auto)

  // limits:  (defaults match Valkey)
  uint64_t max_bulk_len = 512ull << 20;     // proto-max-bulk-len
  uint64_t max_inline_len = 64ull << 10;    // inline request limit
  uint64_t max_multibulk_len = 1024 * 1024; // elements per request
  uint64_t client_buffer_bytes = 64ull << 20;  // per client: held replies + unsent output before backpressure
  uint64_t total_held_bytes = 1ull << 30;      // all clients: held reply bytes before backpressure

  // durability:
  DurabilityMode durability = DurabilityMode::always;
  uint32_t hold_timeout_ms = 10000;      // a held reply that cannot become durable in time gets an error
  bool trust_script_keys = false;        // scripts/functions touch only their declared keys
  bool allow_replica_sync = false;       // clients may SYNC/PSYNC (the pipe is not held)
  uint64_t max_unsynced_bytes = 64ull << 20;  // stream bytes received but not fsynced before backpressure

  // log:
  std::string log_dir = "./data/log";
  uint64_t segment_bytes = 64ull << 20;
  uint32_t commit_delay_us = 0;
  uint32_t fsync_overlap = 2;  // group commits whose fsync may be in flight at once

  // checkpoint:
  uint64_t checkpoint_max_log_bytes = 1ull << 30;
  uint32_t checkpoint_interval_s = 3600;  // 0 = only by size / on demand

  // recovery:
  HostPort restore_listen{"127.0.0.1", 0};  // port 0 = any free port
  std::string node_data_dir;  // a cluster node's `dir` as the proxy sees it ("" = as the node says)
  OnUnknownDataset on_unknown_dataset = OnUnknownDataset::refuse;

  // admin:
  bool admin_enabled = true;
  HostPort admin{"127.0.0.1", 9379};
  std::string admin_token;  // resolved from token_file / token_env; "" = no auth
  std::string admin_token_file;  // where the token came from (as written; "" = not used)
  std::string admin_token_env;

  // logging:
  std::string log_level = "info";  // debug | info | warn | error
  std::string log_format = "text"; // text | json
  std::string log_file;            // "" = stderr

  // shutdown:
  uint32_t shutdown_timeout_ms = 10000;
};

// Command-line overrides (flags fixed by the deployment files):
// --listen HOST:PORT --upstream HOST:PORT --log-dir DIR --admin HOST:PORT
// --durability always|off --sharing auto|off
struct Overrides {
  std::optional<HostPort> listen, upstream, admin;
  std::optional<std::string> log_dir;
  std::optional<DurabilityMode> durability;
  std::optional<UpstreamSharing> sharing;
};

struct LoadResult {
  std::optional<Config> config;
  std::string error;  // when !config: names file:line:column and the key
};

// Reads `path` (must exist), applies defaults then overrides, validates.
// Secrets are resolved here: upstream_password / admin_token are read from
// the *_file (trailing newlines stripped) or *_env named in the YAML; inline
// secrets are refused.  Relative paths are kept as written: they resolve
// against the working directory.  Main thread only (reads the environment).
LoadResult load_file(const std::string& path, const Overrides& overrides);
// Same from YAML text; `name` is used in messages in place of the path.
LoadResult load_string(const std::string& yaml, const std::string& name, const Overrides& overrides);

// "host:port" parsing shared with the command line. Returns error text or "".
std::string parse_host_port(const std::string& text, HostPort* out);

// A one-line summary of the effective config with secrets hidden.
std::string summary(const Config& c);

// Command line ------------------------------------------------------------
struct CommandLine {
  std::string config_path = "proxy.yaml";
  bool config_path_given = false;
  bool check_config = false, version = false, help = false;
  bool checkpoint = false;  // --checkpoint: ask the running proxy's admin port for a checkpoint
  Overrides overrides;
};
// Returns error text ("" on success) naming the flag.
std::string parse_command_line(int argc, char** argv, CommandLine* out);

// The config a command line asks for: an explicit --config FILE must exist
// (a missing one is an error naming it); without --config, ./proxy.yaml when
// it exists, else the built-in defaults (as valkey-server runs without a
// config file).  Overrides apply in every case.  *source says which, for the
// start-up line: the path, or kBuiltInDefaults.
inline constexpr const char* kBuiltInDefaults = "built-in defaults (no --config, no ./proxy.yaml)";
LoadResult load_for_command_line(const CommandLine& cl, std::string* source);
const char* usage_text();

}  // namespace dp::config
