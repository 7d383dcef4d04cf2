// ControlLink against a real server: answers as resp::Value trees, and a
// close() that keeps every callback it is given.
#include "proxy/upstream/control_link.h"

#include <doctest/doctest.h>

#include <optional>

#include "unit/redis_server_fixture.h"

using dp::resp::Value;
using dp::test::Loop;
using dp::test::RedisServer;
using dp::upstream::ControlLink;
using dp::upstream::ControlLinkOptions;

namespace {

ControlLinkOptions options_for(uint16_t port) {
  ControlLinkOptions o;
  o.host = "127.0.0.1";
  o.port = port;
  return o;
}

// One command's answer, copied out of the callback.
struct Answer {
  bool called = false;
  std::optional<Value> reply;
  std::string err;
};

Answer ask(Loop& loop, ControlLink& link, const std::vector<std::string>& argv) {
  Answer a;
  link.command(argv, [&a](const Value* r, const std::string& err) {
    a.called = true;
    if (r) a.reply = *r;
    a.err = err;
  });
  loop.run_until([&] { return a.called; }, "the answer to " + argv[0]);
  return a;
}

}  // namespace

TEST_CASE("the control link answers as resp values of each type") {
  RedisServer srv;
  Loop loop;
  int ups = 0;
  ControlLink link(loop.get(), options_for(srv.port()), [&] { ups++; }, [](const std::string&) {});
  link.connect();
  REQUIRE(loop.run_until([&] { return link.up(); }, "the control link to come up"));

  Answer pong = ask(loop, link, {"PING"});
  REQUIRE(pong.reply);
  CHECK(pong.reply->type == Value::Type::simple);
  CHECK(pong.reply->str == "PONG");

  Answer incr = ask(loop, link, {"INCR", "counter"});
  REQUIRE(incr.reply);
  CHECK(incr.reply->type == Value::Type::integer);
  CHECK(incr.reply->integer == 1);

  Answer missing = ask(loop, link, {"GET", "no-such-key"});
  REQUIRE(missing.reply);
  CHECK(missing.reply->type == Value::Type::null);

  Answer info = ask(loop, link, {"INFO", "replication"});
  REQUIRE(info.reply);
  CHECK(info.reply->type == Value::Type::bulk);
  CHECK(info.reply->str.find("role:master") != std::string::npos);

  Answer cfg = ask(loop, link, {"CONFIG", "GET", "port"});
  REQUIRE(cfg.reply);
  REQUIRE(cfg.reply->type == Value::Type::array);
  REQUIRE(cfg.reply->elems.size() == 2);
  CHECK(cfg.reply->elems[1].str == std::to_string(srv.port()));

  Answer bad = ask(loop, link, {"NO-SUCH-COMMAND"});
  REQUIRE(bad.reply);
  CHECK(bad.reply->type == Value::Type::error);
  CHECK(bad.reply->str.find("unknown command") != std::string::npos);

  bool role_ok = false, role_called = false;
  link.role([&](bool ok, uint64_t, const std::string&) { role_called = true, role_ok = ok; });
  REQUIRE(loop.run_until([&] { return role_called; }, "the ROLE answer"));
  CHECK(role_ok);
  CHECK(ups == 1);

  int closed = 0;
  link.close([&] { closed++; });
  REQUIRE(loop.run_until([&] { return closed == 1; }, "the close callback"));
  CHECK(loop.close_ok());
}

TEST_CASE("a command on a link that is down is answered with no reply and the reason") {
  Loop loop;
  ControlLink link(loop.get(), options_for(dp::test::free_port()), [] {}, [](const std::string&) {});
  Answer a = ask(loop, link, {"PING"});
  CHECK_FALSE(a.reply);
  CHECK(a.err.find("is down") != std::string::npos);
  bool closed = false;
  link.close([&] { closed = true; });
  REQUIRE(loop.run_until([&] { return closed; }, "the close callback"));
  CHECK(loop.close_ok());
}

TEST_CASE("close is idempotent: a second call's callback runs too, a call after the end runs at once") {
  RedisServer srv;
  Loop loop;
  int downs = 0;
  ControlLink link(loop.get(), options_for(srv.port()), [] {}, [&](const std::string&) { downs++; });
  link.connect();
  REQUIRE(loop.run_until([&] { return link.up(); }, "the control link to come up"));
  int first = 0, second = 0, late = 0;
  link.close([&] { first++; });
  link.close([&] { second++; });
  link.close(nullptr);
  REQUIRE(loop.run_until([&] { return first == 1 && second == 1; }, "both close callbacks"));
  link.close([&] { late++; });
  CHECK(late == 1);
  loop.run_for(50);  // nothing runs twice
  CHECK(first == 1);
  CHECK(second == 1);
  CHECK(downs == 0);  // closing is not a lost link
  CHECK(loop.close_ok());
}

TEST_CASE("close of a link that never connected keeps both callbacks") {
  Loop loop;
  ControlLink link(loop.get(), options_for(dp::test::free_port()), [] {}, [](const std::string&) {});
  int first = 0, second = 0;
  link.close([&] { first++; });
  link.close([&] { second++; });
  REQUIRE(loop.run_until([&] { return first == 1 && second == 1; }, "both close callbacks"));
  CHECK(loop.close_ok());
}
