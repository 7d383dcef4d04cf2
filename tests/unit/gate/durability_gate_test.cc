#include <doctest/doctest.h>

#include <map>
#include <vector>

#include "proxy/gate/durability_gate.h"

using dp::gate::DurabilityGate;
using dp::gate::GateClient;
using dp::gate::Token;

namespace {
struct FakeSession : GateClient {
  int releases = 0, fails = 0;
  std::string reason;
  void on_release() override { ++releases; }
  void on_fail(const std::string& r) override {
    ++fails;
    reason = r;
  }
};

struct Fixture {
  std::vector<uint64_t> sent;
  std::map<uint64_t, FakeSession> sessions;
  DurabilityGate gate{[this](uint64_t id) { sent.push_back(id); },
                      [this](uint64_t id) -> GateClient* {
                        auto it = sessions.find(id);
                        return it == sessions.end() ? nullptr : &it->second;
                      }};
};
}  // namespace

TEST_CASE("replies of one loop turn share one probe") {
  Fixture f;
  f.sessions[1];
  f.sessions[2];
  uint64_t p = f.gate.current_probe();
  f.gate.cover(1, nullptr, 0);
  f.gate.cover(1, nullptr, 0);
  f.gate.cover(2, nullptr, 0);
  CHECK(f.gate.current_probe() == p);
  CHECK(f.sent.empty());
  f.gate.flush();
  REQUIRE(f.sent.size() == 1);
  CHECK(f.sent[0] == p);
  CHECK(f.gate.current_probe() == p + 1);
  f.gate.flush();  // nothing new: no probe
  CHECK(f.sent.size() == 1);
}

TEST_CASE("a covered reply is released only once the durable offset reaches the probe's answer") {
  Fixture f;
  f.sessions[1];
  uint64_t p = f.gate.current_probe();
  f.gate.cover(1, nullptr, 0);
  f.gate.flush();
  f.gate.durable(50);
  CHECK(f.gate.released_through() < p);  // not answered yet: nothing released
  f.gate.probe_answered(p, 100);
  CHECK(f.gate.released_through() < p);
  CHECK(f.sessions[1].releases == 0);
  f.gate.durable(99);
  CHECK(f.gate.released_through() < p);
  f.gate.durable(100);
  CHECK(f.gate.released_through() == p);
  CHECK(f.sessions[1].releases == 1);
}

TEST_CASE("an answer at or below the durable offset releases at once") {
  Fixture f;
  f.sessions[1];
  f.gate.durable(500);
  uint64_t p = f.gate.current_probe();
  f.gate.cover(1, nullptr, 0);
  f.gate.flush();
  f.gate.probe_answered(p, 400);
  CHECK(f.gate.released_through() == p);
  CHECK(f.sessions[1].releases == 1);
}

TEST_CASE("batches release in order even when durable jumps past several") {
  Fixture f;
  f.sessions[1];
  f.sessions[2];
  uint64_t p1 = f.gate.current_probe();
  f.gate.cover(1, nullptr, 0);
  f.gate.flush();
  uint64_t p2 = f.gate.current_probe();
  f.gate.cover(2, nullptr, 0);
  f.gate.flush();
  f.gate.probe_answered(p1, 10);
  f.gate.probe_answered(p2, 20);
  f.gate.durable(15);
  CHECK(f.gate.released_through() == p1);
  CHECK(f.sessions[2].releases == 0);
  f.gate.durable(25);
  CHECK(f.gate.released_through() == p2);
  CHECK(f.sessions[2].releases == 1);
}

TEST_CASE("a write token is resolved at its probe's offset") {
  Fixture f;
  Token t;
  f.gate.pending().mark_key(&t, 0, "k");
  uint64_t p = f.gate.current_probe();
  f.gate.cover(0, &t, 0);  // session gone: token only
  CHECK(t.empty());
  f.gate.flush();
  CHECK(f.gate.pending().key_pending(0, "k"));
  f.gate.probe_answered(p, 70);
  f.gate.durable(69);
  CHECK(f.gate.pending().key_pending(0, "k"));
  f.gate.durable(70);
  CHECK_FALSE(f.gate.pending().key_pending(0, "k"));
}

TEST_CASE("batches older than the hold timeout fail their sessions, never release them") {
  Fixture f;
  f.sessions[1];
  uint64_t p = f.gate.current_probe();
  f.gate.cover(1, nullptr, 1000);
  f.gate.flush();
  f.gate.expire(1500, 1000, "slow");
  CHECK(f.sessions[1].fails == 0);
  f.gate.expire(2000, 1000, "replica link down");
  CHECK(f.sessions[1].fails == 1);
  CHECK(f.sessions[1].reason == "replica link down");
  CHECK(f.gate.failed_through() == p);
  CHECK(f.gate.released_through() < p);
}

TEST_CASE("log failure fails every waiting reply including the open batch") {
  Fixture f;
  f.sessions[1];
  f.sessions[2];
  f.gate.cover(1, nullptr, 0);
  f.gate.flush();
  uint64_t open = f.gate.current_probe();
  f.gate.cover(2, nullptr, 0);
  f.gate.expire(0, 0, "fsync failed", /*all=*/true);
  CHECK(f.gate.failed_through() >= open);
  CHECK(f.sessions[1].fails == 1);
  CHECK(f.sessions[2].fails == 1);
}

TEST_CASE("unanswered probes are listed for re-sending after a control link drop") {
  Fixture f;
  f.sessions[1];
  uint64_t p1 = f.gate.current_probe();
  f.gate.cover(1, nullptr, 0);
  f.gate.flush();
  uint64_t p2 = f.gate.current_probe();
  f.gate.cover(1, nullptr, 0);
  f.gate.flush();
  f.gate.probe_answered(p1, 5);
  auto left = f.gate.unanswered_probes();
  REQUIRE(left.size() == 1);
  CHECK(left[0] == p2);
}

TEST_CASE("cover_through joins the oldest answered batch at or above the offset") {
  Fixture f;
  f.sessions[1];
  f.sessions[2];
  uint64_t p1 = f.gate.current_probe();
  f.gate.cover(1, nullptr, 0);
  f.gate.flush();
  uint64_t p2 = f.gate.current_probe();
  f.gate.cover(1, nullptr, 0);
  f.gate.flush();
  uint64_t p3 = f.gate.current_probe();
  f.gate.cover(1, nullptr, 0);
  f.gate.flush();
  CHECK(f.gate.cover_through(2, 10) == 0);  // nothing answered yet
  f.gate.probe_answered(p1, 100);
  f.gate.probe_answered(p2, 200);
  CHECK(f.gate.cover_through(2, 100) == p1);
  CHECK(f.gate.cover_through(2, 150) == p2);
  CHECK(f.gate.cover_through(2, 250) == 0);  // p3 unanswered: the caller uses a new probe
  f.gate.probe_answered(p3, 300);
  CHECK(f.gate.cover_through(2, 250) == p3);
  // Session 2 joined p1: it hears of the release of p1 at durable 100.
  f.gate.durable(100);
  CHECK(f.gate.released_through() == p1);
  CHECK(f.sessions[2].releases >= 1);
}

TEST_CASE("a reply never joins a batch the hold timeout failed; the failure keeps its reason") {
  Fixture f;
  f.sessions[1];
  f.sessions[2];
  uint64_t p1 = f.gate.current_probe();
  f.gate.cover(1, nullptr, 1000);
  f.gate.flush();
  f.gate.probe_answered(p1, 100);
  f.gate.expire(2000, 1000, "replica link down");
  CHECK(f.gate.failed_through() == p1);
  CHECK(f.gate.fail_reason() == "replica link down");
  // A read of a key written at offset 100 arrives after the failure: it
  // waits for a new probe rather than failing with the old batch.
  CHECK(f.gate.cover_through(2, 100) == 0);
}

TEST_CASE("after a log failure an answered batch the durable offset does not cover fails at once") {
  // A write in flight when the log failed: its reply joins a batch after the
  // expire-all; the durable offset never moves again.
  Fixture f;
  f.sessions[1];
  f.sessions[2];
  f.gate.durable(10);
  f.gate.expire(0, 0, "the durable log failed: EIO", /*all=*/true);
  uint64_t late = f.gate.current_probe();
  f.gate.cover(1, nullptr, 0);
  f.gate.flush();
  uint64_t read = f.gate.current_probe();
  f.gate.cover(2, nullptr, 0);
  f.gate.flush();
  f.gate.probe_answered(late, 50);  // above durable: can never be released
  CHECK(f.sessions[1].fails == 0);
  f.gate.fail_answered("the durable log failed: EIO");
  CHECK(f.sessions[1].fails == 1);
  CHECK(f.gate.failed_through() == late);
  CHECK(f.sessions[2].fails == 0);  // unanswered: not failed before its answer
  f.gate.probe_answered(read, 50);
  CHECK(f.sessions[2].releases == 0);
  f.gate.fail_answered("the durable log failed: EIO");
  CHECK(f.sessions[2].fails == 1);
  CHECK(f.gate.failed_through() == read);
}

TEST_CASE("a new history below every offset seen fails what waits and never releases at old offsets") {
  // The log switched to a history whose base (1,000) lies far below the
  // offsets of the old one (5,000,000): a write answered in the new history
  // must wait for the new durable offset, not pass the old one at once.
  Fixture f;
  f.sessions[1];
  f.sessions[2];
  f.gate.durable(5'000'000);
  uint64_t old = f.gate.current_probe();
  f.gate.cover(1, nullptr, 0);
  f.gate.flush();
  f.gate.probe_answered(old, 5'000'100);  // waits for the old history's fsync
  f.gate.new_history(1'000, "the upstream switched to another history");
  CHECK(f.sessions[1].fails == 1);
  CHECK(f.sessions[1].reason.find("another history") != std::string::npos);
  uint64_t p = f.gate.current_probe();
  f.gate.cover(2, nullptr, 0);
  f.gate.flush();
  f.gate.probe_answered(p, 1'050);
  CHECK(f.sessions[2].releases == 0);  // 1,050 > 1,000: not durable yet
  f.gate.durable(1'049);
  CHECK(f.sessions[2].releases == 0);
  f.gate.durable(1'050);
  CHECK(f.sessions[2].releases == 1);
  CHECK(f.gate.waiting_batches() == 0);
}

TEST_CASE("after a new history a key marked in the old one is not pending at its old offset") {
  Fixture f;
  f.sessions[1];
  f.gate.durable(100);
  f.gate.pending().stream_key(0, "k", 5'000'000);
  CHECK(f.gate.pending().key_pending(0, "k"));
  f.gate.new_history(1'000, "switched");
  CHECK_FALSE(f.gate.pending().key_pending(0, "k"));
  CHECK(f.gate.pending().empty());
  f.gate.pending().stream_key(0, "k", 1'200);
  CHECK(f.gate.pending().key_pending(0, "k"));
  f.gate.durable(1'200);
  CHECK_FALSE(f.gate.pending().key_pending(0, "k"));
}

TEST_CASE("cover_at: a reply with a known offset needs no probe and is released exactly at that offset") {
  Fixture f;
  f.sessions[1];
  Token t;
  f.gate.pending().mark_key(&t, 0, "k");
  uint64_t p = f.gate.cover_at(1, &t, 100, 0);
  CHECK(f.sent.empty());
  CHECK(f.gate.pending().key_pending(0, "k"));
  f.gate.durable(99);
  CHECK(f.gate.released_through() < p);
  CHECK(f.sessions[1].releases == 0);
  f.gate.durable(100);
  CHECK(f.gate.released_through() >= p);
  CHECK(f.sessions[1].releases == 1);
  CHECK_FALSE(f.gate.pending().key_pending(0, "k"));
  // Already durable, nothing waiting before it: released at once.
  uint64_t q = f.gate.cover_at(1, nullptr, 50, 0);
  CHECK(f.gate.released_through() >= q);
}

TEST_CASE("cover_at behind an open batch: that batch's probe goes first and the known offset waits for it") {
  Fixture f;
  f.sessions[1];
  f.sessions[2];
  uint64_t open = f.gate.current_probe();
  f.gate.cover(1, nullptr, 0);  // offset unknown: needs a probe
  uint64_t p = f.gate.cover_at(2, nullptr, 100, 0);
  REQUIRE(f.sent.size() == 1);
  CHECK(f.sent[0] == open);
  CHECK(p > open);
  f.gate.durable(100);
  CHECK(f.gate.released_through() < open);  // the probe has not answered: neither goes
  CHECK(f.sessions[2].releases == 0);
  f.gate.probe_answered(open, 150);
  CHECK(f.gate.released_through() < open);
  f.gate.durable(150);
  CHECK(f.gate.released_through() >= p);
}

TEST_CASE("cover_at never joins a batch of an earlier loop turn, so an old batch's timeout is not a new reply's") {
  Fixture f;
  f.sessions[1];
  f.sessions[2];
  uint64_t a = f.gate.cover_at(1, nullptr, 100, 0);
  CHECK(f.gate.cover_at(1, nullptr, 90, 0) == a);  // same turn, answered at or above: joins
  uint64_t b = f.gate.cover_at(2, nullptr, 90, 5000);
  CHECK(b != a);
  f.gate.expire(5000, 4000, "held too long");  // fails the batch of time 0 only
  CHECK(f.sessions[1].fails == 1);
  CHECK(f.sessions[2].fails == 0);
  f.gate.durable(100);
  CHECK(f.gate.released_through() >= b);
}

TEST_CASE("cover_at keeps answered offsets non-decreasing: a lower ROLE answer waits for the highest so far") {
  Fixture f;
  f.sessions[1];
  f.sessions[2];
  Token t;
  f.gate.pending().mark_key(&t, 0, "k");
  f.gate.cover_at(1, nullptr, 200, 0);
  uint64_t p = f.gate.cover_at(2, &t, 150, 1);  // another connection's ROLE, run earlier
  f.gate.durable(150);
  CHECK(f.gate.released_through() < p);
  CHECK(f.gate.pending().key_pending(0, "k"));  // resolved at 200, never below the schedule
  f.gate.durable(200);
  CHECK(f.gate.released_through() >= p);
  CHECK_FALSE(f.gate.pending().key_pending(0, "k"));
}
