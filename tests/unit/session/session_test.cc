// proxy/session: one Session between a fake client and a fake upstream, in
// the test's loop, with a real DurabilityGate whose probes the test answers
// (tests/unit/session/session_harness.h).  Each Harness checks at the end
// that every handle closed and every gauge is back to zero.
#include <doctest/doctest.h>

#include <string>

#include "unit/session/session_harness.h"

using dp::test::command;
using dp::test::FakeClient;
using dp::test::Harness;

TEST_CASE("a write's reply is held until the gate releases it") {
  Harness h;
  FakeClient& c = h.client();
  c.send(command({"SET", "k", "v"}));
  REQUIRE(h.run_until_held(0, 1, "SET's reply to be held and its probe sent"));
  CHECK(c.got.empty());
  CHECK(h.session(0)->held_bytes() == 5);
  CHECK(h.ctx.total_held_bytes == 5);
  CHECK(h.gate->pending().key_pending(0, "k"));

  h.gate->probe_answered(h.probes[0], 100);
  h.gate->durable(99);  // the log has not reached the write yet
  CHECK(h.session(0)->held_count() == 1);
  CHECK(h.ctx.total_held_bytes == 5);
  h.gate->durable(100);
  CHECK(h.session(0)->held_count() == 0);
  CHECK(h.ctx.total_held_bytes == 0);
  REQUIRE(h.run_until([&] { return c.got == "+OK\r\n"; }, "SET's +OK once durable"));
  CHECK_FALSE(h.gate->pending().key_pending(0, "k"));
}

TEST_CASE("a read of a key with a write pending is held; a read of another key is not") {
  Harness h;
  FakeClient& writer = h.client();
  writer.send(command({"SET", "k", "v"}));
  REQUIRE(h.run_until_held(0, 1, "the writer's SET to be held"));
  FakeClient& reader = h.client();
  reader.send(command({"GET", "other"}));
  REQUIRE(h.run_until([&] { return reader.got == "$-1\r\n"; }, "GET other, answered at once"));
  reader.send(command({"GET", "k"}));
  REQUIRE(h.run_until_held(1, 1, "GET k to be held"));
  CHECK(reader.got == "$-1\r\n");
  CHECK(writer.got.empty());

  h.make_durable(100);
  REQUIRE(h.run_until([&] { return writer.got == "+OK\r\n" && reader.got == "$-1\r\n$1\r\nv\r\n"; },
                      "both replies once durable"));
}

TEST_CASE("in a pipeline of reads, each read waits for its own keys only") {
  Harness h;
  FakeClient& writer = h.client();
  writer.send(command({"SET", "k", "v"}));
  REQUIRE(h.run_until_held(0, 1, "the writer's SET to be held"));
  FakeClient& reader = h.client();
  reader.send(command({"GET", "other"}) + command({"MGET", "x", "k"}) + command({"GET", "other2"}));
  REQUIRE(h.run_until([&] { return h.upstream->commands.size() == 4; }, "the three reads at the upstream"));
  REQUIRE(h.run_until_held(1, 2, "MGET (k is pending) and the GET behind it held"));
  REQUIRE(h.run_until([&] { return reader.got == "$-1\r\n"; }, "GET other at once: nothing pending on it"));
  CHECK(h.session(1)->held_count() == 2);
  h.make_durable(100);
  REQUIRE(h.run_until([&] { return reader.got == "$-1\r\n*2\r\n$-1\r\n$1\r\nv\r\n$-1\r\n"; },
                      "MGET and GET other2 once durable"));
}

TEST_CASE("a read waits only for the offset of the write pending on its key") {
  Harness h;
  FakeClient& writer = h.client();
  writer.send(command({"SET", "k", "v"}));
  REQUIRE(h.run_until_held(0, 1, "the writer's SET to be held"));
  h.gate->probe_answered(h.probes[0], 100);  // the write is at offset 100, not durable yet
  FakeClient& reader = h.client();
  reader.send(command({"GET", "k"}));
  REQUIRE(h.run_until_held(1, 1, "GET k to be held"));
  const size_t probes = h.probes.size();
  REQUIRE(h.run_until([&] { return h.upstream->commands.size() == 2; }, "both commands at the upstream"));
  CHECK(h.probes.size() == probes);  // joined the answered batch: no new probe
  h.gate->durable(100);
  REQUIRE(h.run_until([&] { return writer.got == "+OK\r\n" && reader.got == "$1\r\nv\r\n"; },
                      "both replies at durable 100"));
}

TEST_CASE("pipelined replies leave in command order, held ones holding those behind") {
  Harness h;
  FakeClient& c = h.client();
  c.send(command({"SET", "a", "1"}) + command({"GET", "b"}) + command({"PING"}) + command({"SET", "c", "2"}) +
         command({"GET", "a"}) + command({"DEL", "c"}));
  REQUIRE(h.run_until_held(0, 6, "all six replies held behind the first SET"));
  CHECK(c.got.empty());
  const std::string want = "+OK\r\n$-1\r\n+PONG\r\n+OK\r\n$1\r\n1\r\n:1\r\n";
  CHECK(h.ctx.total_held_bytes == want.size());
  h.make_durable(100);
  REQUIRE(h.run_until([&] { return c.got.size() >= want.size(); }, "the six replies"));
  CHECK(c.got == want);
}

TEST_CASE("a reply that needs no wait leaves at once when nothing is held before it") {
  Harness h;
  FakeClient& c = h.client();
  c.send(command({"PING"}) + command({"GET", "x"}));
  REQUIRE(h.run_until([&] { return c.got == "+PONG\r\n$-1\r\n"; }, "PING and GET answered"));
  CHECK(h.probes.empty());
  CHECK(h.session(0)->held_count() == 0);
}

TEST_CASE("a client that leaves while its reply is held frees everything") {
  Harness h;
  FakeClient& c = h.client();
  c.send(command({"SET", "k", "v"}) + command({"PING"}));
  REQUIRE(h.run_until_held(0, 2, "both replies held"));
  CHECK(h.ctx.total_held_bytes == 12);
  c.close();
  REQUIRE(h.run_until([&] { return h.sessions.empty(); }, "the session to close"));
  CHECK(h.ctx.total_held_bytes == 0);
  CHECK(h.ctx.clients == 0);
  REQUIRE(h.run_until([&] { return h.upstream->open_connections() == 0; }, "the upstream connection to close"));
  h.make_durable(100);
  CHECK_FALSE(h.gate->pending().key_pending(0, "k"));
}

TEST_CASE("a client that leaves before the upstream answered: the upstream finishes, the marks resolve") {
  Harness h;
  h.upstream->hold = true;           // the upstream runs the write but answers nothing yet
  h.upstream->close_on_eof = false;  // and finishes only when the test says
  FakeClient& c = h.client();
  c.send(command({"SET", "k", "v"}));
  REQUIRE(h.run_until([&] { return h.upstream->commands.size() == 1; }, "SET at the upstream"));
  CHECK(h.gate->pending().key_pending(0, "k"));
  c.close();
  // The session shuts the upstream's write side and waits for its EOF, so
  // that the probe after it covers every command the upstream ran.
  REQUIRE(h.run_until([&] { return h.upstream->eofs == 1; }, "the session's write shutdown at the upstream"));
  CHECK(h.sessions.size() == 1);
  CHECK(h.probes.empty());
  h.upstream->answer_held();  // late replies: swallowed
  h.upstream->close_connections();
  REQUIRE(h.run_until([&] { return h.sessions.empty(); }, "the session to close after the upstream's EOF"));
  CHECK(h.ctx.total_held_bytes == 0);
  CHECK(h.gate->pending().key_pending(0, "k"));  // covered: resolved by the next probe only
  REQUIRE(h.run_until([&] { return !h.probes.empty(); }, "the probe covering the swallowed write"));
  h.make_durable(100);
  CHECK_FALSE(h.gate->pending().key_pending(0, "k"));
}

TEST_CASE("a protocol error answers what is due, then the error, then closes") {
  Harness h;
  FakeClient& c = h.client();
  c.send(command({"SET", "k", "v"}) + "*1\r\n$x\r\n");
  REQUIRE(h.run_until_held(0, 2, "SET's reply and the error held in order"));
  h.make_durable(100);
  REQUIRE(h.run_until([&] { return c.eof(); }, "the proxy to close the connection"));
  CHECK(c.got.rfind("+OK\r\n-ERR Protocol error", 0) == 0);
}

TEST_CASE("held replies are answered with an error when the gate fails them") {
  Harness h;
  FakeClient& c = h.client();
  c.send(command({"SET", "k", "v"}) + command({"PING"}));
  REQUIRE(h.run_until_held(0, 2, "both replies held"));
  h.gate->expire(h.ctx.now_ms, 0, "test timeout", /*all=*/true);
  REQUIRE(h.run_until([&] { return c.got.find("+PONG\r\n") != std::string::npos; }, "the error, then PONG"));
  CHECK(c.got == "-ERR durable-proxy: reply withheld, write not durable: test timeout\r\n+PONG\r\n");
  CHECK(h.ctx.total_held_bytes == 0);
}

TEST_CASE("WAITAOF is answered by the proxy once every earlier write is durable") {
  Harness h;
  FakeClient& c = h.client();
  c.send(command({"SET", "k", "v"}) + command({"WAITAOF", "1", "0", "0"}));
  REQUIRE(h.run_until_held(0, 2, "SET and WAITAOF held"));
  CHECK(h.upstream->commands.size() == 1);  // WAITAOF never reached the upstream
  h.make_durable(100);
  REQUIRE(h.run_until([&] { return c.got == "+OK\r\n*2\r\n:1\r\n:0\r\n"; }, "SET's +OK then WAITAOF's answer"));
}
