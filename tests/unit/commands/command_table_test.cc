// proxy/commands: classification against the COMMAND reply captured from
// redis-server 7.0.15 (tests/tools/capture_command.py).
#include <doctest/doctest.h>

#include <initializer_list>
#include <string>

#include "proxy/commands/command_table.h"
#include "proxy/commands/monitor_line.h"
#include "unit/command_table_data.h"

using namespace dp::commands;

namespace {

std::unique_ptr<CommandTable> load(TableOptions opts = {}, const char* file = "redis-7.0.15-command.resp") {
  return dp::test::load_command_table(opts, file);
}

const CommandTable& redis7() {
  static std::unique_ptr<CommandTable> table = load();
  return *table;
}

// Owns the argument strings so the views in Classification stay valid.
struct Call {
  std::vector<std::string> storage;
  std::vector<std::string_view> args;
  Classification c;
  Call(const CommandTable& t, std::initializer_list<const char*> words) {
    for (const char* w : words) storage.emplace_back(w);
    for (const std::string& s : storage) args.emplace_back(s);
    t.classify(args, &c);
  }
  std::vector<std::string> keys() const { return {c.keys.begin(), c.keys.end()}; }
};

using Keys = std::vector<std::string>;

}  // namespace

namespace doctest {
template <>
struct StringMaker<Keys> {
  static String convert(const Keys& keys) {
    std::string out = "[";
    for (const std::string& k : keys) out += (out.size() > 1 ? ", " : "") + k;
    return (out + "]").c_str();
  }
};
}  // namespace doctest

TEST_CASE("the captured reply loads every command") {
  CHECK(redis7().size() == 240);
  REQUIRE(redis7().find("CONFIG|GET") != nullptr);
  CHECK(redis7().find("config|nosuch") == nullptr);
}

TEST_CASE("SET is a write of its key, GET a read of its key") {
  Call set(redis7(), {"SET", "k", "v"});
  CHECK(set.c.kind == Kind::write);
  CHECK(set.keys() == Keys{"k"});
  CHECK_FALSE(set.c.db_wide);
  Call get(redis7(), {"GET", "k"});
  CHECK(get.c.kind == Kind::read);
  CHECK(get.keys() == Keys{"k"});
}

TEST_CASE("SET with GET is still a write of its key") {
  Call c(redis7(), {"set", "k", "v", "GET"});
  CHECK(c.c.kind == Kind::write);
  CHECK(c.keys() == Keys{"k"});
}

TEST_CASE("MSET takes every second argument as a key") {
  Call c(redis7(), {"MSET", "a", "1", "b", "2", "c", "3"});
  CHECK(c.c.kind == Kind::write);
  CHECK(c.keys() == Keys{"a", "b", "c"});
}

TEST_CASE("ZUNIONSTORE finds its destination and numkeys sources") {
  Call c(redis7(), {"ZUNIONSTORE", "dst", "2", "s1", "s2", "WEIGHTS", "1", "2"});
  CHECK(c.c.kind == Kind::write);
  CHECK(c.keys() == Keys{"dst", "s1", "s2"});
  Call bad(redis7(), {"ZUNIONSTORE", "dst", "9", "s1"});  // numkeys beyond the args
  CHECK(bad.keys() == Keys{"dst"});
  Call notnum(redis7(), {"ZUNIONSTORE", "dst", "x", "s1"});
  CHECK(notnum.keys() == Keys{"dst"});
}

TEST_CASE("XREAD keys are the first half after STREAMS; BLOCK makes it blocking") {
  Call c(redis7(), {"XREAD", "COUNT", "2", "STREAMS", "s1", "s2", "0", "0"});
  CHECK(c.c.kind == Kind::read);
  CHECK(c.keys() == Keys{"s1", "s2"});
  CHECK_FALSE(c.c.blocking);
  Call b(redis7(), {"xread", "block", "0", "streams", "s1", "$"});
  CHECK(b.c.blocking);
  CHECK(b.keys() == Keys{"s1"});
}

TEST_CASE("XREADGROUP is a write, blocking only with BLOCK, even in a group named BLOCK") {
  Call c(redis7(), {"XREADGROUP", "GROUP", "g", "c", "STREAMS", "s1", ">"});
  CHECK(c.c.kind == Kind::write);
  CHECK(c.keys() == Keys{"s1"});
  CHECK_FALSE(c.c.blocking);
  Call named(redis7(), {"XREADGROUP", "GROUP", "BLOCK", "c", "STREAMS", "s1", ">"});
  CHECK_FALSE(named.c.blocking);
  Call b(redis7(), {"XREADGROUP", "GROUP", "g", "c", "BLOCK", "100", "STREAMS", "s1", "s2", ">", ">"});
  CHECK(b.c.blocking);
  CHECK(b.keys() == Keys{"s1", "s2"});
}

TEST_CASE("blocking list pops are blocking writes") {
  Call c(redis7(), {"BLPOP", "a", "b", "0"});
  CHECK(c.c.kind == Kind::write);
  CHECK(c.c.blocking);
  CHECK(c.keys() == Keys{"a", "b"});
  Call w(redis7(), {"WAIT", "1", "0"});
  CHECK(w.c.blocking);
  CHECK(w.c.special == Special::wait);
}

TEST_CASE("EVAL writes its declared keys and, untrusted, its whole db") {
  Call c(redis7(), {"EVAL", "return 1", "2", "k1", "k2", "arg"});
  CHECK(c.c.kind == Kind::write);
  CHECK(c.c.special == Special::eval);
  CHECK(c.c.db_wide);
  CHECK(c.keys() == Keys{"k1", "k2"});
  Call none(redis7(), {"EVALSHA", "abc", "0"});
  CHECK(none.c.kind == Kind::write);
  CHECK(none.keys().empty());
  Call f(redis7(), {"FCALL", "fn", "1", "k"});
  CHECK(f.c.kind == Kind::write);
  CHECK(f.c.db_wide);
}

TEST_CASE("trust_script_keys limits scripts to their declared keys") {
  auto trusted = load(TableOptions{.trust_script_keys = true});
  Call c(*trusted, {"EVAL", "return 1", "1", "k1", "arg"});
  CHECK(c.c.kind == Kind::write);
  CHECK_FALSE(c.c.db_wide);
  CHECK(c.keys() == Keys{"k1"});
  Call ro(*trusted, {"EVAL_RO", "return 1", "1", "k1"});
  CHECK(ro.c.kind == Kind::read);
  CHECK(ro.keys() == Keys{"k1"});
}

TEST_CASE("read-only scripts are reads of declared keys only when trusted") {
  Call ro(redis7(), {"EVALSHA_RO", "abc", "1", "k1"});
  CHECK(ro.c.kind == Kind::keyspace_read);
  CHECK(ro.keys() == Keys{"k1"});
  CHECK_FALSE(ro.c.db_wide);
}

TEST_CASE("MIGRATE names its single key or every key after KEYS") {
  Call one(redis7(), {"MIGRATE", "h", "6379", "k", "0", "1000"});
  CHECK(one.c.kind == Kind::write);
  CHECK(one.keys() == Keys{"k"});
  Call many(redis7(), {"MIGRATE", "h", "6379", "", "0", "1000", "COPY", "AUTH", "keys", "KEYS", "a", "KEYS"});
  CHECK(many.keys() == Keys{"a", "KEYS"});
  CHECK_FALSE(many.c.db_wide);
}

TEST_CASE("SORT STORE writes its destination; SORT_RO BY pattern waits like a write") {
  Call c(redis7(), {"SORT", "src", "LIMIT", "0", "10", "GET", "#", "STORE", "dst"});
  CHECK(c.c.kind == Kind::write);
  CHECK(c.keys() == Keys{"src", "dst"});
  CHECK_FALSE(c.c.db_wide);
  Call ro(redis7(), {"SORT_RO", "src", "ALPHA"});
  CHECK(ro.c.kind == Kind::read);
  CHECK(ro.keys() == Keys{"src"});
  Call by(redis7(), {"SORT_RO", "src", "BY", "weight_*"});
  CHECK(by.c.kind == Kind::keyspace_read);
}

TEST_CASE("BITFIELD with only GET is a read; SET or INCRBY make it a write") {
  Call get(redis7(), {"BITFIELD", "k", "GET", "u8", "0", "OVERFLOW", "SAT", "get", "i4", "4"});
  CHECK(get.c.kind == Kind::read);
  CHECK(get.keys() == Keys{"k"});
  Call set(redis7(), {"BITFIELD", "k", "GET", "u8", "0", "SET", "u8", "0", "1"});
  CHECK(set.c.kind == Kind::write);
  Call incr(redis7(), {"bitfield", "k", "incrby", "u8", "0", "1"});
  CHECK(incr.c.kind == Kind::write);
  Call junk(redis7(), {"BITFIELD", "k", "GET", "u8"});
  CHECK(junk.c.kind == Kind::write);
  Call ro(redis7(), {"BITFIELD_RO", "k", "GET", "u8", "0"});
  CHECK(ro.c.kind == Kind::read);
  CHECK(ro.keys() == Keys{"k"});
}

TEST_CASE("OBJECT ENCODING is a read of its key found by subcommand") {
  Call c(redis7(), {"object", "ENCODING", "k"});
  CHECK(c.c.kind == Kind::read);
  CHECK(c.keys() == Keys{"k"});
  REQUIRE(c.c.info != nullptr);
  CHECK(c.c.info->name == "object|encoding");
}

TEST_CASE("CONFIG GET reveals no data and is not held") {
  Call c(redis7(), {"CONFIG", "GET", "maxmemory"});
  CHECK(c.c.kind == Kind::other);
  CHECK(c.keys().empty());
  CHECK(Call(redis7(), {"PING"}).c.kind == Kind::other);
  CHECK(Call(redis7(), {"PING"}).c.special == Special::ping);
}

TEST_CASE("CLIENT REPLY and other tracked commands carry their special") {
  CHECK(Call(redis7(), {"CLIENT", "REPLY", "OFF"}).c.special == Special::client_reply);
  CHECK(Call(redis7(), {"client", "tracking", "on"}).c.special == Special::client_tracking);
  CHECK(Call(redis7(), {"SELECT", "1"}).c.special == Special::select);
  CHECK(Call(redis7(), {"MULTI"}).c.special == Special::multi);
  CHECK(Call(redis7(), {"SUBSCRIBE", "ch"}).c.special == Special::subscribe);
  Call exec(redis7(), {"EXEC"});
  CHECK(exec.c.special == Special::exec);
  CHECK(exec.c.kind == Kind::write);
  CHECK_FALSE(exec.c.db_wide);
  CHECK(Call(redis7(), {"CLIENT", "SETNAME", "x"}).c.special == Special::none);
}

TEST_CASE("FLUSHALL makes every db pending, FLUSHDB the current one") {
  Call all(redis7(), {"FLUSHALL", "ASYNC"});
  CHECK(all.c.kind == Kind::write);
  CHECK(all.c.all_dbs);
  CHECK(all.c.db_wide);
  Call db(redis7(), {"FLUSHDB"});
  CHECK(db.c.kind == Kind::write);
  CHECK(db.c.db_wide);
  CHECK_FALSE(db.c.all_dbs);
}

TEST_CASE("SWAPDB makes both named dbs pending") {
  Call c(redis7(), {"SWAPDB", "3", "7"});
  CHECK(c.c.kind == Kind::write);
  CHECK(c.c.other_db == 3);
  CHECK(c.c.other_db2 == 7);
  CHECK_FALSE(c.c.all_dbs);
}

TEST_CASE("MOVE and COPY ... DB make the target db pending") {
  Call move(redis7(), {"MOVE", "k", "5"});
  CHECK(move.c.kind == Kind::write);
  CHECK(move.keys() == Keys{"k"});
  CHECK(move.c.other_db == 5);
  CHECK(move.c.db_wide);
  Call copy(redis7(), {"COPY", "a", "b", "REPLACE", "db", "2"});
  CHECK(copy.keys() == Keys{"a", "b"});
  CHECK(copy.c.other_db == 2);
  CHECK(copy.c.db_wide);
  Call local(redis7(), {"COPY", "a", "b"});
  CHECK(local.c.other_db == -1);
  CHECK_FALSE(local.c.db_wide);
}

TEST_CASE("KEYS, SCAN, DBSIZE and RANDOMKEY wait like writes") {
  for (auto words : {std::initializer_list<const char*>{"KEYS", "*"}, {"SCAN", "0"}, {"DBSIZE"}, {"RANDOMKEY"}}) {
    Call c(redis7(), words);
    CHECK_MESSAGE(c.c.kind == Kind::keyspace_read, c.args[0]);
    CHECK_FALSE(c.c.db_wide);
  }
}

TEST_CASE("an unknown command is a write that makes its db pending") {
  Call c(redis7(), {"MYMODULE.DOSOMETHING", "k"});
  CHECK(c.c.kind == Kind::write);
  CHECK(c.c.db_wide);
  CHECK(c.c.info == nullptr);
  Call sub(redis7(), {"CONFIG", "NOSUCHSUB"});
  CHECK(sub.c.kind == Kind::write);
  CHECK(sub.c.db_wide);
  std::string long_name(200, 'g');
  std::vector<std::string_view> args{long_name};
  Classification out;
  redis7().classify(args, &out);
  CHECK(out.kind == Kind::write);
  CHECK(out.db_wide);
}

TEST_CASE("PUBLISH and SPUBLISH are writes that mark no key") {
  Call c(redis7(), {"PUBLISH", "ch", "msg"});
  CHECK(c.c.kind == Kind::write);
  CHECK(c.keys().empty());
  CHECK_FALSE(c.c.db_wide);
  Call s(redis7(), {"SPUBLISH", "ch", "msg"});
  CHECK(s.c.kind == Kind::write);
  CHECK(s.keys().empty());
  Call pf(redis7(), {"PFCOUNT", "h1", "h2"});
  CHECK(pf.c.kind == Kind::write);
  CHECK(pf.keys() == Keys{"h1", "h2"});
}

TEST_CASE("CLUSTER SETSLOT is a keyless write (may_replicate since Valkey 8.0)") {
  // 7.0's COMMAND calls it admin only; Valkey 8 propagates it to replicas.
  Call c(redis7(), {"CLUSTER", "SETSLOT", "7", "STABLE"});
  CHECK(c.c.kind == Kind::write);
  CHECK(c.keys().empty());
  CHECK_FALSE(c.c.all_dbs);
  CHECK(Call(redis7(), {"CLUSTER", "INFO"}).c.kind != Kind::write);
}

TEST_CASE("command and subcommand names match in any case") {
  for (auto words : {std::initializer_list<const char*>{"get", "k"}, {"GeT", "k"}, {"GET", "k"}}) {
    Call c(redis7(), words);
    CHECK(c.c.kind == Kind::read);
    CHECK(c.keys() == Keys{"k"});
  }
  CHECK(Call(redis7(), {"cLiEnT", "rEpLy", "ON"}).c.special == Special::client_reply);
  CHECK(Call(redis7(), {"xread", "StReAmS", "s", "0"}).keys() == Keys{"s"});
}

TEST_CASE("too few arguments never reach past the args and classify as a write") {
  const CommandTable& t = redis7();
  CHECK(Call(t, {"GET"}).c.kind == Kind::write);
  CHECK(Call(t, {"GET"}).keys().empty());
  CHECK(Call(t, {"ZUNIONSTORE", "dst"}).keys() == Keys{"dst"});
  CHECK(Call(t, {"ZUNIONSTORE"}).keys().empty());
  CHECK(Call(t, {"XREAD", "STREAMS"}).keys().empty());
  CHECK(Call(t, {"XREAD", "STREAMS", "s"}).c.kind == Kind::write);
  CHECK(Call(t, {"EVAL", "s", "5", "k"}).keys().empty());
  CHECK(Call(t, {"MIGRATE", "h"}).keys().empty());
  CHECK(Call(t, {"SORT"}).keys().empty());
  CHECK(Call(t, {"BITFIELD"}).c.kind == Kind::write);
  CHECK(Call(t, {"MOVE", "k"}).c.other_db == -1);
  CHECK(Call(t, {"SWAPDB", "1"}).c.other_db == -1);
  CHECK(Call(t, {"CONFIG"}).c.kind == Kind::write);
  CHECK(Call(t, {"MSET", "a", "1", "b"}).c.kind == Kind::write);
  Classification out;
  t.classify({}, &out);
  CHECK(out.kind == Kind::write);
  CHECK(out.db_wide);
}

TEST_CASE("classifying reuses the key vector without reallocating") {
  Classification out;
  std::vector<std::string_view> args{"MSET", "a", "1", "b", "2"};
  redis7().classify(args, &out);
  const void* data = out.keys.data();
  for (int i = 0; i < 100; ++i) redis7().classify(args, &out);
  CHECK(out.keys.data() == data);
  CHECK(out.keys.size() == 2);
}

TEST_CASE("the built-in table classifies unknown commands as db-wide writes") {
  auto t = CommandTable::builtin({});
  Call get(*t, {"GET", "k"});
  CHECK(get.c.kind == Kind::write);
  CHECK(get.c.db_wide);
  CHECK(get.c.info == nullptr);
  Call sel(*t, {"select", "2"});
  CHECK(sel.c.special == Special::select);
  CHECK(sel.c.kind == Kind::other);
  CHECK(Call(*t, {"CLIENT", "REPLY", "OFF"}).c.special == Special::client_reply);
  CHECK(Call(*t, {"CLIENT", "SETNAME", "x"}).c.kind == Kind::write);
  CHECK(Call(*t, {"FLUSHALL"}).c.all_dbs);
  CHECK(Call(*t, {"DBSIZE"}).c.kind == Kind::keyspace_read);
  CHECK(Call(*t, {"EVAL_RO", "s", "0"}).c.kind == Kind::keyspace_read);
  Call bf(*t, {"BITFIELD", "k", "GET", "u8", "0"});
  CHECK(bf.c.kind == Kind::write);
  CHECK(bf.c.db_wide);
  CHECK(Call(*t, {"EXEC"}).c.kind == Kind::write);
  CHECK(Call(*t, {"MOVE", "k", "3"}).c.other_db == 3);
}

TEST_CASE("a RESP3 COMMAND reply (maps and sets) gives the same table as RESP2") {
  auto resp3 = load({}, "redis-7.0.15-command-resp3.resp");
  CHECK(resp3->size() == redis7().size());
  for (auto words : {std::initializer_list<const char*>{"SET", "k", "v"},
                     {"ZUNIONSTORE", "d", "2", "a", "b"},
                     {"XREAD", "BLOCK", "1", "STREAMS", "s1", "s2", "0", "0"},
                     {"EVAL", "s", "1", "k"},
                     {"CLIENT", "REPLY", "ON"},
                     {"SORT", "a", "STORE", "b"},
                     {"MIGRATE", "h", "1", "", "0", "0", "KEYS", "x", "y"},
                     {"FLUSHALL"},
                     {"GEORADIUS", "g", "0", "0", "1", "km", "STORE", "d"},
                     {"SPUBLISH", "c", "m"},
                     {"DBSIZE"}}) {
    Call a(redis7(), words), b(*resp3, words);
    CHECK_MESSAGE(a.keys() == b.keys(), a.args[0]);
    CHECK(a.c.kind == b.c.kind);
    CHECK(a.c.special == b.c.special);
    CHECK(a.c.blocking == b.c.blocking);
    CHECK(a.c.db_wide == b.c.db_wide);
    CHECK(a.c.all_dbs == b.c.all_dbs);
  }
}

TEST_CASE("a malformed COMMAND reply is refused with the entry named") {
  auto parse = [](std::string_view bytes) {
    dp::resp::Value v;
    size_t used = 0;
    std::string err;
    REQUIRE_MESSAGE(dp::resp::decode_value(bytes, &used, &v, &err), err);
    auto t = CommandTable::from_command_reply(v, {}, &err);
    CHECK(t == nullptr);
    return err;
  };
  CHECK(parse("-ERR unknown command 'COMMAND'\r\n").find("unknown command") != std::string::npos);
  CHECK(parse("*0\r\n").find("no commands") != std::string::npos);
  CHECK(parse("*1\r\n:1\r\n") == "COMMAND reply entry 0: is not an array");
  std::string err = parse(
      "*1\r\n*10\r\n$3\r\nget\r\n:2\r\n*0\r\n:1\r\n:1\r\n:1\r\n*0\r\n*0\r\n"
      "*1\r\n*4\r\n$5\r\nflags\r\n*0\r\n$12\r\nbegin_search\r\n*0\r\n*0\r\n");
  CHECK(err == "COMMAND reply entry 0 ('get'): key spec 0 lacks begin_search or find_keys");
}

TEST_CASE("a server without key specs falls back to first/last/step and guards movable keys") {
  // Redis 6 style entries: name, arity, flags, first, last, step, categories.
  std::string bytes =
      "*3\r\n"
      "*7\r\n$4\r\nmset\r\n:-3\r\n*1\r\n+write\r\n:1\r\n:-1\r\n:2\r\n*0\r\n"
      "*7\r\n$11\r\nzunionstore\r\n:-4\r\n*2\r\n+write\r\n+movablekeys\r\n:0\r\n:0\r\n:0\r\n*0\r\n"
      "*7\r\n$6\r\nzinter\r\n:-3\r\n*2\r\n+readonly\r\n+movablekeys\r\n:0\r\n:0\r\n:0\r\n*0\r\n";
  dp::resp::Value v;
  size_t used = 0;
  std::string err;
  REQUIRE(dp::resp::decode_value(bytes, &used, &v, &err));
  auto t = CommandTable::from_command_reply(v, {}, &err);
  REQUIRE_MESSAGE(t != nullptr, err);
  Call mset(*t, {"MSET", "a", "1", "b", "2"});
  CHECK(mset.keys() == Keys{"a", "b"});
  CHECK_FALSE(mset.c.db_wide);
  Call zu(*t, {"ZUNIONSTORE", "d", "1", "a"});
  CHECK(zu.c.kind == Kind::write);
  CHECK(zu.c.db_wide);
  Call zi(*t, {"ZINTER", "1", "a"});
  CHECK(zi.c.kind == Kind::keyspace_read);
}

TEST_CASE("MONITOR lines: a write's line is held, the proxy's own ROLE and reads are not") {
  const CommandTable& t = redis7();
  CHECK(monitor_line_needs_hold(t, "+1700000000.123456 [0 127.0.0.1:5000] \"set\" \"k\" \"v\"\r\n"));
  CHECK(monitor_line_needs_hold(t, "+1700000000.123456 [0 lua] \"set\" \"k\" \"a \\\"q\\\" b\"\r\n"));
  CHECK(monitor_line_needs_hold(t, "+1700000000.123456 [3 127.0.0.1:5000] \"exec\"\r\n"));
  CHECK_FALSE(monitor_line_needs_hold(t, "+1700000000.123456 [0 127.0.0.1:5000] \"role\"\r\n"));
  CHECK_FALSE(monitor_line_needs_hold(t, "+1700000000.123456 [0 127.0.0.1:5000] \"ROLE\"\r\n"));
  CHECK_FALSE(monitor_line_needs_hold(t, "+1700000000.123456 [0 127.0.0.1:5000] \"get\" \"k\\x00\"\r\n"));
  CHECK_FALSE(monitor_line_needs_hold(t, "+1700000000.123456 [0 127.0.0.1:5000] \"ping\"\r\n"));
  // Unreadable lines are held.
  CHECK(monitor_line_needs_hold(t, "+1700000000.123456 [0 127.0.0.1:5000] \"get\r\n"));
  CHECK(monitor_line_needs_hold(t, "+OK\r\n"));
}

TEST_CASE("writes whose reach is unknown make every db pending (scripts, unknown, DEBUG, CONFIG SET)") {
  const CommandTable& t = redis7();
  std::vector<std::vector<const char*>> cmds = {
      {"EVAL", "return 1", "1", "k"}, {"EVALSHA", "abc", "0"}, {"FCALL", "f", "0"},
      {"NOSUCHCOMMAND", "x"},        {"DEBUG", "RELOAD"},    {"CONFIG", "SET", "maxmemory", "1"}};
  for (const auto& words : cmds) {
    std::vector<std::string_view> args(words.begin(), words.end());
    Classification c;
    t.classify(args, &c);
    CAPTURE(words[0]);
    CHECK(c.kind == Kind::write);
    CHECK(c.all_dbs);
  }
  CHECK(Call(t, {"CONFIG", "GET", "maxmemory"}).c.kind == Kind::other);
  // A trusted script marks only its keys.
  TableOptions trust;
  trust.trust_script_keys = true;
  auto trusted = load(trust);
  Call e(*trusted, {"EVAL", "return 1", "1", "k"});
  CHECK_FALSE(e.c.all_dbs);
  CHECK(e.keys() == Keys{"k"});
  CHECK(monitor_line_needs_hold(t, "+1700000000.123456 [0 127.0.0.1:5000] \"config\" \"set\" \"maxmemory\" \"1\"\r\n"));
}

TEST_CASE("FUNCTION changes write, and FCALL_RO reads, the function libraries' pseudo key") {
  TableOptions trust;
  trust.trust_script_keys = true;
  auto t = load(trust);
  Call load_fn(*t, {"FUNCTION", "LOAD", "#!lua name=x\n"});
  CHECK(load_fn.c.kind == Kind::write);
  CHECK_FALSE(load_fn.c.db_wide);
  CHECK(load_fn.keys() == Keys{std::string(kFunctionLibrariesKey)});
  Call ro(*t, {"FCALL_RO", "f", "1", "k"});
  CHECK(ro.c.kind == Kind::read);
  CHECK(ro.keys() == Keys{"k", std::string(kFunctionLibrariesKey)});
  CHECK(Call(*t, {"PUBLISH", "ch", "m"}).keys().empty());
}
