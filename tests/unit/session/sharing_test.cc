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
