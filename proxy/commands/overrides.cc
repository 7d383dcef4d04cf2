#include "proxy/commands/overrides.h"

#include <array>

namespace dp::commands {
namespace {

using K = Kind;
using S = Special;
using H = Handler;
using D = DbEffect;

// A session-tracked command: kind from COMMAND's flags (built-in: `builtin`).
constexpr Override tracked(std::string_view name, S special, K builtin = K::other) {
  return Override{.name = name, .special = special, .builtin_kind = builtin};
}
constexpr Override forced(std::string_view name, K kind, D db = D::keys, S special = S::none) {
  return Override{.name = name, .special = special, .force_kind = true, .kind = kind,
                  .force_db_effect = true, .db_effect = db};
}
constexpr Override handled(std::string_view name, H handler, K kind, D db = D::keys) {
  return Override{.name = name, .force_kind = true, .kind = kind, .force_db_effect = true,
                  .db_effect = db, .handler = handler};
}
constexpr Override script(std::string_view name, S special, K kind) {
  return Override{.name = name, .special = special, .force_kind = true, .kind = kind, .script = true};
}
constexpr Override libraries(Override o) {
  o.function_libraries = true;
  return o;
}
constexpr Override blocking(Override o) {
  o.blocking = true;
  return o;
}

constexpr std::array kOverrides = {
    // Connection state the session tracks.  Kinds come from COMMAND (none
    // of these carries write or readonly: "other").
    tracked("select", S::select), tracked("multi", S::multi),
    tracked("discard", S::discard), tracked("watch", S::watch), tracked("unwatch", S::unwatch),
    tracked("hello", S::hello), tracked("auth", S::auth), tracked("reset", S::reset),
    tracked("quit", S::quit), tracked("client|reply", S::client_reply),
    tracked("client|kill", S::client_kill), tracked("client|tracking", S::client_tracking),
    tracked("client|unblock", S::client_unblock), tracked("monitor", S::monitor),
    tracked("subscribe", S::subscribe), tracked("psubscribe", S::psubscribe),
    tracked("ssubscribe", S::ssubscribe), tracked("unsubscribe", S::unsubscribe),
    tracked("punsubscribe", S::punsubscribe), tracked("sunsubscribe", S::sunsubscribe),
    tracked("ping", S::ping), tracked("sync", S::sync), tracked("psync", S::psync),
    tracked("replconf", S::replconf), tracked("shutdown", S::shutdown),
    blocking(tracked("wait", S::wait)), blocking(tracked("waitaof", S::waitaof)),
    // EXEC's effect is whatever was queued; the session adds the queued
    // commands' keys, so EXEC itself names none.
    forced("exec", K::write, D::none, S::exec),

    // may_replicate is hidden from COMMAND: these write although their
    // flags say otherwise.  PUBLISH changes no key but its message must not
    // be seen before the writes before it are durable (rule 3).
    script("eval", S::eval, K::write), script("evalsha", S::evalsha, K::write),
    script("fcall", S::fcall, K::write),
    script("eval_ro", S::eval_ro, K::read), script("evalsha_ro", S::evalsha_ro, K::read),
    libraries(script("fcall_ro", S::fcall_ro, K::read)),
    forced("pfcount", K::write),  // may rewrite the HLL's cached cardinality
    forced("publish", K::write, D::none), forced("spublish", K::write, D::none),
    // Valkey 8.0 made CLUSTER SETSLOT may_replicate (it reaches the replicas
    // through the stream); on 7.x it is an admin command that changes no key.
    forced("cluster|setslot", K::write, D::none),
    // Valkey 9.0's atomic slot migration: CLUSTER SYNCSLOTS ESTABLISH turns
    // the connection into the source's stream of the slots (the session
    // follows it: session_requests.cc); it is may_replicate too.
    forced("cluster|syncslots", K::write, D::none, S::cluster_syncslots),
    forced("script|load", K::write, D::none), forced("script|flush", K::write, D::none),
    // FUNCTION changes name the libraries' pseudo key, no real key.
    libraries(forced("function|load", K::write, D::none)),
    libraries(forced("function|delete", K::write, D::none)),
    libraries(forced("function|flush", K::write, D::none)),
    libraries(forced("function|restore", K::write, D::none)),
    // Writes whose reach is unknown make every db pending (issue 11 class
    // 2): DEBUG RELOAD / POPULATE / SET-ACTIVE-EXPIRE... change the dataset;
    // CONFIG SET maxmemory evicts, others (lazyfree, active expiry, hz...)
    // change when and how keys go.  CONFIG SET's reply then also waits for
    // every write before it.
    forced("debug", K::write, D::all_dbs),
    forced("config|set", K::write, D::all_dbs),

    // Reads that see the whole keyspace (or function state) with no keys.
    forced("keys", K::keyspace_read), forced("scan", K::keyspace_read),
    forced("dbsize", K::keyspace_read), forced("randomkey", K::keyspace_read),
    forced("function|list", K::keyspace_read), forced("function|dump", K::keyspace_read),
    forced("cluster|getkeysinslot", K::keyspace_read),
    forced("cluster|countkeysinslot", K::keyspace_read),

    // Reads that report the keyspace, its counters or recent commands'
    // arguments without naming a key (issue 11 class 3): INFO's keyspace,
    // stats (hits/misses of a held read), commandstats and memory lines;
    // MEMORY STATS' key counts; FUNCTION STATS' libraries; the arguments in
    // SLOWLOG / COMMANDLOG entries; LATENCY HISTOGRAM's call counts; CLIENT
    // LIST / INFO's cmd= and argv-mem=.  Held like KEYS: until every write
    // executed before them is durable.  (INFO durability is the proxy's own
    // answer and is not forwarded.)  What is left unheld on purpose is in
    // README.md's contract, "Not held, by design".
    forced("info", K::keyspace_read, D::keys, S::info),
    forced("memory|stats", K::keyspace_read), forced("memory|doctor", K::keyspace_read),
    forced("memory|malloc-stats", K::keyspace_read),
    forced("function|stats", K::keyspace_read),
    forced("slowlog|get", K::keyspace_read), forced("slowlog|len", K::keyspace_read),
    forced("commandlog|get", K::keyspace_read), forced("commandlog|len", K::keyspace_read),
    forced("latency|latest", K::keyspace_read), forced("latency|history", K::keyspace_read),
    forced("latency|doctor", K::keyspace_read), forced("latency|graph", K::keyspace_read),
    forced("latency|histogram", K::keyspace_read),
    forced("client|list", K::keyspace_read), forced("client|info", K::keyspace_read),

    // Keyless writes with known reach (any other keyless write: all dbs).
    forced("flushall", K::write, D::all_dbs), forced("flushdb", K::write, D::whole_db),
    handled("swapdb", H::swapdb, K::write, D::whole_db),
    handled("move", H::move, K::write),      // whole_db set when the db parses
    handled("copy", H::copy, K::write),      // whole_db with DB
    // Key specs marked unknown/incomplete/variable_flags: read the args.
    handled("sort", H::sort, K::write), handled("sort_ro", H::sort_ro, K::read),
    handled("migrate", H::migrate, K::write), handled("bitfield", H::bitfield, K::write),
    handled("xread", H::xread, K::read), handled("xreadgroup", H::xreadgroup, K::write),
};

bool has_flag(const CommandInfo& info, uint32_t f) { return (info.flags & f) != 0; }

}  // namespace

size_t override_count() { return kOverrides.size(); }
const Override& override_at(size_t i) { return kOverrides[i]; }

const Override* find_override(std::string_view name) {
  for (const Override& o : kOverrides)
    if (o.name == name) return &o;
  return nullptr;
}

void finalize(CommandInfo* info, const TableOptions& opts, bool from_reply) {
  const Override* ov = find_override(info->name);
  info->use_key_specs = !info->key_specs.empty();
  if (!from_reply) {
    // Built-in: no key positions are known, so every write is db-wide and
    // hand-written readers are used only for what they add besides keys.
    Kind kind = ov == nullptr ? Kind::write : ov->force_kind ? ov->kind : ov->builtin_kind;
    if (kind == Kind::read) kind = Kind::keyspace_read;
    info->kind = kind;
    info->db_effect = DbEffect::whole_db;
    if (ov != nullptr) {
      info->special = ov->special;
      info->blocking = ov->blocking;
      info->function_libraries = ov->function_libraries;
      if (ov->force_db_effect && ov->db_effect != DbEffect::keys) info->db_effect = ov->db_effect;
      bool keeps_handler = ov->handler == Handler::swapdb || ov->handler == Handler::move ||
                           ov->handler == Handler::copy || ov->handler == Handler::xread ||
                           ov->handler == Handler::xreadgroup;
      info->handler = keeps_handler ? ov->handler : Handler::none;
    }
    if (info->kind != Kind::write) info->db_effect = DbEffect::keys;
    return;
  }

  // Keys the specs cannot find (movable keys on a server without specs, or
  // specs marked unknown / incomplete), and commands that name no key.
  bool keys_unknowable = has_flag(*info, kMovableKeys) && info->key_specs.empty();
  bool keyless = info->key_specs.empty() ? info->first_key == 0 : true;
  for (const KeySpec& s : info->key_specs) {
    if (s.not_key) continue;
    keyless = false;
    if (s.begin == KeySpec::Begin::unknown || s.find == KeySpec::Find::unknown || s.incomplete)
      keys_unknowable = true;
  }
  if (has_flag(*info, kMovableKeys)) keyless = false;

  if (has_flag(*info, kWrite)) {
    info->kind = Kind::write;
    info->db_effect = keys_unknowable ? DbEffect::whole_db : keyless ? DbEffect::all_dbs : DbEffect::keys;
  } else if (has_flag(*info, kReadonly)) {
    info->kind = keys_unknowable || keyless ? Kind::keyspace_read : Kind::read;
  } else if (has_flag(*info, kModule)) {
    info->kind = Kind::write;  // a module command that declares nothing: any db
    info->db_effect = DbEffect::all_dbs;
  } else {
    info->kind = Kind::other;
  }
  info->blocking = has_flag(*info, kBlocking);

  if (ov != nullptr) {
    info->special = ov->special;
    info->handler = ov->handler;
    info->function_libraries = ov->function_libraries;
    info->blocking = info->blocking || ov->blocking;
    if (ov->force_kind) info->kind = ov->kind;
    if (ov->force_db_effect) info->db_effect = ov->db_effect;
    if (ov->script) {
      bool trusted = opts.trust_script_keys && info->use_key_specs;
      // An untrusted script may SELECT, MOVE, SWAPDB or FLUSHALL: its reach
      // is every db, not the one it runs in.
      if (info->kind == Kind::write) info->db_effect = trusted ? DbEffect::keys : DbEffect::all_dbs;
      if (info->kind == Kind::read && !trusted) info->kind = Kind::keyspace_read;
    }
  }
  if (info->kind != Kind::write) info->db_effect = DbEffect::keys;
}

}  // namespace dp::commands
