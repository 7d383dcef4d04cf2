// proxy/commands/connection_state: which commands move a shared session to
// its own upstream connection, against the COMMAND reply captured from
// redis-server 7.0.15 (which has no CLIENT SETINFO) and valkey-server 8.0.1
// (tests/tools/capture_command.py).
#include <doctest/doctest.h>

#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "proxy/commands/command_table.h"
#include "proxy/commands/connection_state.h"
#include "unit/command_table_data.h"

using namespace dp::commands;

namespace {

const CommandTable& redis7() {
  static std::unique_ptr<CommandTable> table = dp::test::load_command_table({}, "redis-7.0.15-command.resp");
  return *table;
}

bool own(std::initializer_list<const char*> words, const CommandTable& t = redis7()) {
  std::vector<std::string> storage(words.begin(), words.end());
  std::vector<std::string_view> args(storage.begin(), storage.end());
  Classification c;
  t.classify(args, &c);
  return needs_own_connection(c, args);
}

}  // namespace

TEST_CASE("data commands share a connection") {
  CHECK_FALSE(own({"SET", "k", "v"}));
  CHECK_FALSE(own({"get", "k"}));
  CHECK_FALSE(own({"MSET", "a", "1", "b", "2"}));
  CHECK_FALSE(own({"INCR", "n"}));
  CHECK_FALSE(own({"PING"}));
  CHECK_FALSE(own({"ECHO", "x"}));
  CHECK_FALSE(own({"EVAL", "return 1", "0"}));
  CHECK_FALSE(own({"FCALL", "f", "0"}));
  CHECK_FALSE(own({"XREAD", "STREAMS", "s", "0"}));  // no BLOCK: answers at once
  CHECK_FALSE(own({"PUBLISH", "ch", "m"}));
  CHECK_FALSE(own({"INFO", "server"}));
  CHECK_FALSE(own({"CONFIG", "GET", "maxmemory"}));
  CHECK_FALSE(own({"FLUSHALL"}));
  CHECK_FALSE(own({"SCRIPT", "LOAD", "return 1"}));
  CHECK_FALSE(own({"FUNCTION", "LIST"}));
}

TEST_CASE("connection state, blocking and unknown commands need their own connection") {
  for (auto words : std::vector<std::vector<const char*>>{
           {"MULTI"}, {"EXEC"}, {"DISCARD"}, {"WATCH", "k"}, {"UNWATCH"}, {"SELECT", "1"},
           {"HELLO", "3"}, {"AUTH", "pw"}, {"AUTH", "user", "pw"}, {"RESET"}, {"QUIT"},
           {"READONLY"}, {"READWRITE"}, {"ASKING"}, {"SUBSCRIBE", "c"}, {"PSUBSCRIBE", "p*"},
           {"SSUBSCRIBE", "c"}, {"UNSUBSCRIBE"}, {"MONITOR"}, {"SYNC"}, {"PSYNC", "?", "-1"},
           {"REPLCONF", "listening-port", "1"}, {"BLPOP", "l", "0"}, {"BRPOP", "l", "1"},
           {"BLMOVE", "a", "b", "LEFT", "LEFT", "0"}, {"BZPOPMIN", "z", "0"},
           {"XREAD", "BLOCK", "0", "STREAMS", "s", "$"}, {"WAIT", "0", "0"}, {"WAITAOF", "1", "0", "0"},
           {"CLIENT", "SETNAME", "x"}, {"CLIENT", "ID"}, {"CLIENT", "INFO"}, {"CLIENT", "LIST"},
           {"CLIENT", "KILL", "ID", "1"}, {"CLIENT", "PAUSE", "10"}, {"CLIENT", "TRACKING", "on"},
           {"CLIENT", "REPLY", "OFF"}, {"CLIENT", "NO-EVICT", "on"}, {"CLIENT", "GETNAME"},
           {"SCRIPT", "DEBUG", "yes"}, {"SCRIPT", "KILL"}, {"FUNCTION", "KILL"}, {"SHUTDOWN"}, {"NOSUCHCOMMAND", "x"}, {"CONFIG", "NOSUCH"}}) {
    std::vector<std::string> storage(words.begin(), words.end());
    std::vector<std::string_view> args(storage.begin(), storage.end());
    Classification c;
    redis7().classify(args, &c);
    INFO(storage[0] << (storage.size() > 1 ? " " + storage[1] : std::string()));
    CHECK(needs_own_connection(c, args));
  }
}

TEST_CASE("CLIENT SETINFO is kept only when the server knows it and would accept the value") {
  // Redis 7.0 has no SETINFO: the server's own error must answer it.
  CHECK(own({"CLIENT", "SETINFO", "LIB-NAME", "redis-py"}));
  // A table that knows it (Valkey 8): kept for valid values only.
  auto valkey = dp::test::load_command_table({}, "valkey-8.0.1-command.resp");
  CHECK_FALSE(own({"CLIENT", "SETINFO", "LIB-NAME", "redis-py"}, *valkey));
  CHECK_FALSE(own({"client", "setinfo", "lib-ver", "5.0.1"}, *valkey));
  CHECK(own({"CLIENT", "SETINFO", "LIB-NAME", "with space"}, *valkey));
  CHECK(own({"CLIENT", "SETINFO", "LIB-NAME", "new\nline"}, *valkey));
  CHECK(own({"CLIENT", "SETINFO", "NOSUCH", "x"}, *valkey));
  CHECK(own({"CLIENT", "SETINFO", "LIB-NAME"}, *valkey));
}
