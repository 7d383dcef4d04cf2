// proxy/session with upstream.sharing: auto: sessions on shared upstream
// connections (session/shared_upstream.h) against the fake upstream, with
// the real gate; each Harness checks at the end that every handle closed
// and every gauge is back to zero.
#include <doctest/doctest.h>

#include <string>

#include "unit/session/session_harness.h"

using dp::test::command;
using dp::test::FakeClient;
using dp::test::Harness;

TEST_CASE("clients share the pool's connections and each gets its own replies, in order") {
  Harness h;
  h.enable_sharing(2);
  std::vector<FakeClient*> cs;
  for (int i = 0; i < 6; ++i) cs.push_back(&h.client());
  for (int i = 0; i < 6; ++i) {
    std::string k = "k" + std::to_string(i);
    cs[i]->send(command({"SET", k, "v" + std::to_string(i)}) + command({"GET", k}) + command({"GET", "none"}));
  }
  REQUIRE(h.run_until([&] { return h.count_commands("GET") == 12; }, "every GET at the upstream"));
  REQUIRE(h.run_until(
      [&] {
        h.make_durable(100);  // every probe sent so far answered, the log durable through it
        for (int i = 0; i < 6; ++i)
          if (cs[i]->got != "+OK\r\n$2\r\nv" + std::to_string(i) + "\r\n$-1\r\n") return false;
        return true;
      },
      "each client's three replies"));
  // Two shared connections (a probe connection may come and go beside them).
  CHECK(h.pool->connections() == 2);
  CHECK(h.upstream->open_connections() <= 3);
}

TEST_CASE("a client that leaves with a write in flight on a shared connection: its mark waits for the reply") {
  Harness h;
  h.enable_sharing(1);
  h.upstream->hold = true;  // the upstream runs the SET but answers nothing yet
  FakeClient& c = h.client();
  c.send(command({"SET", "k", "v"}));
  REQUIRE(h.run_until([&] { return h.count_commands("SET") == 1; }, "SET at the upstream"));
  c.close();
  // The shared connection stays; the session waits for its reply, so no
  // probe may cover the write yet (one sent now could answer an offset
  // before the SET ran, and the mark would go while the write is not durable).
  REQUIRE(h.run_until([&] { return c.closed(); }, "the client's close"));
  for (int i = 0; i < 20; ++i) uv_run(&h.loop, UV_RUN_NOWAIT);
  CHECK(h.sessions.size() == 1);
  CHECK(h.probes.empty());
  CHECK(h.gate->pending().key_pending(0, "k"));
  h.upstream->answer_held();
  REQUIRE(h.run_until([&] { return h.sessions.empty(); }, "the session to close once its reply came"));
  REQUIRE(h.run_until([&] { return !h.probes.empty(); }, "the probe that follows the reply"));
  CHECK(h.gate->pending().key_pending(0, "k"));
  h.make_durable(100);
  CHECK_FALSE(h.gate->pending().key_pending(0, "k"));
}

TEST_CASE("MULTI waits until the client's shared commands are answered, then runs on its own connection") {
  Harness h;
  h.enable_sharing(1);
  h.upstream->hold = true;
  FakeClient& c = h.client();
  const size_t before = h.upstream->open_connections();
  c.send(command({"SET", "k", "v"}) + command({"MULTI"}) + command({"INCR", "n"}) + command({"EXEC"}));
  REQUIRE(h.run_until([&] { return h.count_commands("SET") == 1; }, "SET at the upstream"));
  for (int i = 0; i < 20; ++i) uv_run(&h.loop, UV_RUN_NOWAIT);
  CHECK(h.count_commands("MULTI") == 0);  // not before SET's reply
  CHECK(h.upstream->open_connections() == before + 1);  // its own connection is open, unused
  h.upstream->hold = false;
  h.upstream->answer_held();
  // After the move MULTI, INCR, EXEC go out on its own connection (the
  // fake answers the probe's INFO with +OK, so the pool assumes cluster
  // mode and sends no PUBLISH marker first).
  REQUIRE(h.run_until([&] { return h.count_commands("EXEC") == 1; }, "the transaction at the upstream"));
  CHECK(h.count_commands("MULTI") == 1);
  REQUIRE(h.run_until(
      [&] {
        h.make_durable(100);
        return c.got == "+OK\r\n+OK\r\n+OK\r\n+OK\r\n";
      },
      "four replies, in order"));
}

TEST_CASE("a client that pipelines deeper than the shared bound moves, and every reply arrives in order") {
  Harness h;
  h.enable_sharing(1);
  FakeClient& c = h.client();
  std::string pipeline, want;
  for (int i = 0; i < 40; ++i) {
    pipeline += command({"GET", "none" + std::to_string(i)});
    want += "$-1\r\n";
  }
  c.send(pipeline);
  REQUIRE(h.run_until([&] { return c.got == want; }, "40 replies"));
  CHECK(h.count_commands("GET") == 40);
}

// ---------------------------------------------------------------- ROLE behind a batch

TEST_CASE("a shared write's hold takes the offset of the ROLE behind it: no probe, released exactly at that offset") {
  Harness h;
  h.enable_sharing(1);
  FakeClient& c = h.client();
  c.send(command({"SET", "a", "1"}));
  REQUIRE(h.run_until([&] { return h.count_commands("ROLE") == 1; }, "a ROLE behind the SET"));
  REQUIRE(h.run_until([&] { return h.gate->inline_batches() == 1; }, "the SET's reply covered at the ROLE's offset"));
  // Everything before the ROLE, SET included, is at or below 10 (the fake
  // upstream's offset after one SET).
  CHECK(h.probes.empty());
  CHECK(h.gate->pending().key_pending(0, "a"));
  h.gate->durable(9);
  for (int i = 0; i < 10; ++i) uv_run(&h.loop, UV_RUN_NOWAIT);
  CHECK(c.got.empty());  // released one byte too early would show here
  h.gate->durable(10);
  REQUIRE(h.run_until([&] { return c.got == "+OK\r\n"; }, "the SET's reply once the log reached 10"));
  CHECK_FALSE(h.gate->pending().key_pending(0, "a"));
  CHECK(h.probes.empty());
}

TEST_CASE("a ROLE from another upstream process gives no offset: the reply waits for a control-link probe") {
  Harness h;
  h.ctx.upstream_run_id = "the-process-the-log-follows";  // the shared connection reaches another one
  h.enable_sharing(1);
  FakeClient& c = h.client();
  c.send(command({"SET", "a", "1"}));
  REQUIRE(h.run_until([&] { return h.count_commands("ROLE") == 1 && !h.probes.empty(); },
                      "the SET's reply covered by a probe"));
  CHECK(h.gate->inline_batches() == 0);
  h.gate->durable(1000);  // the ROLE's offset (10) long passed: nothing may go before the probe answers
  for (int i = 0; i < 10; ++i) uv_run(&h.loop, UV_RUN_NOWAIT);
  CHECK(c.got.empty());
  h.make_durable(2000);
  REQUIRE(h.run_until([&] { return c.got == "+OK\r\n"; }, "the SET's reply after its probe"));
}

TEST_CASE("ROLE refused on a shared connection: replies go with probes and no further ROLE is sent there") {
  Harness h;
  h.upstream->refuse_role = true;
  h.enable_sharing(1);
  FakeClient& c = h.client();
  c.send(command({"SET", "a", "1"}));
  REQUIRE(h.run_until([&] { return !h.probes.empty(); }, "the first SET's probe"));
  h.make_durable(100);
  REQUIRE(h.run_until([&] { return c.got == "+OK\r\n"; }, "the first SET's reply"));
  c.send(command({"SET", "b", "2"}));
  REQUIRE(h.run_until([&] { return h.count_commands("SET") == 2 && h.probes.size() == 2; }, "the second SET's probe"));
  CHECK(h.count_commands("ROLE") == 1);
  h.make_durable(200);
  REQUIRE(h.run_until([&] { return c.got == "+OK\r\n+OK\r\n"; }, "the second SET's reply"));
}

TEST_CASE("replies wait in the read buffer for their ROLE answer and keep each client's order") {
  Harness h;
  h.enable_sharing(1);
  h.upstream->hold = true;  // every reply (ROLE's too) written at once by answer_held
  FakeClient& a = h.client();
  FakeClient& b = h.client();
  a.send(command({"SET", "x", "1"}) + command({"GET", "x"}));
  b.send(command({"GET", "nothing"}) + command({"SET", "y", "2"}));
  REQUIRE(h.run_until([&] { return h.count_commands("SET") == 2 && h.count_commands("ROLE") >= 1; },
                      "both clients' commands and a ROLE at the upstream"));
  h.upstream->answer_held();
  REQUIRE(h.run_until([&] { return h.gate->inline_batches() >= 1; }, "replies covered at the ROLE's offset"));
  CHECK(h.probes.empty());
  h.gate->durable(20);
  REQUIRE(h.run_until([&] { return a.got == "+OK\r\n$1\r\n1\r\n" && b.got == "$-1\r\n+OK\r\n"; },
                      "every reply, in each client's order"));
}

TEST_CASE("a shared connection that closes before the ROLE's answer still delivers the replies that came") {
  Harness h;
  h.enable_sharing(1);
  h.upstream->close_at_role = true;  // the SET's reply comes, then EOF where ROLE's answer would be
  FakeClient& c = h.client();
  c.send(command({"SET", "a", "1"}));
  // Without an offset the reply is covered by a probe, and released (then
  // the client closed, as its own connection closing would) once durable.
  REQUIRE(h.run_until([&] { return !h.probes.empty(); }, "the SET's reply covered by a probe"));
  h.make_durable(100);
  REQUIRE(h.run_until([&] { return c.eof(); }, "the client closed after its reply"));
  CHECK(c.got == "+OK\r\n");
}

TEST_CASE("replies before the first write of a batch go at once; the write's waits for the ROLE behind it") {
  Harness h;
  h.enable_sharing(1);
  h.upstream->hold_role = true;  // GET's and SET's replies come; ROLE's answer is held
  FakeClient& c = h.client();
  c.send(command({"GET", "x"}) + command({"SET", "y", "1"}));
  REQUIRE(h.run_until([&] { return c.got == "$-1\r\n"; }, "the GET's reply before the ROLE's answer"));
  for (int i = 0; i < 10; ++i) uv_run(&h.loop, UV_RUN_NOWAIT);
  CHECK(c.got == "$-1\r\n");      // the SET's reply waits for its offset
  CHECK(h.probes.empty());        // ... from the ROLE, not from a probe
  h.upstream->hold = false;
  h.upstream->answer_held();
  REQUIRE(h.run_until([&] { return h.gate->inline_batches() == 1; }, "the SET covered at the ROLE's offset"));
  h.gate->durable(10);
  REQUIRE(h.run_until([&] { return c.got == "$-1\r\n+OK\r\n"; }, "the SET's reply once durable"));
}
