// proxy/gate/reply_queue: the ordered held-reply queue on its own (no
// session, no gate, no loop).  Every fixture ends with the queue empty and
// its byte count back to zero.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "proxy/gate/reply_queue.h"

using dp::admin::HoldKind;
using dp::gate::ReplyQueue;

namespace {

struct Fixture {
  ReplyQueue q;

  // Pops every entry the schedule lets go, in order: its bytes, or
  // "<failed:bytes>" for one answered with an error.
  std::vector<std::string> drain(uint64_t released_through, uint64_t failed_through = 0) {
    std::vector<std::string> out;
    for (auto st = q.front_state(released_through, failed_through); st != ReplyQueue::State::wait;
         st = q.front_state(released_through, failed_through)) {
      std::string bytes(q.front_bytes());
      out.push_back(st == ReplyQueue::State::fail ? "<failed:" + bytes + ">" : bytes);
      q.pop_front();
    }
    return out;
  }
  void push(const std::string& bytes, uint64_t probe, HoldKind kind = HoldKind::write, bool message = false) {
    q.push(bytes, ReplyQueue::Entry{.probe = probe, .kind = kind, .message = message});
  }

  ~Fixture() {
    q.clear();
    CHECK(q.empty());
    CHECK(q.size() == 0);
    CHECK(q.bytes() == 0);
  }
};

using V = std::vector<std::string>;

}  // namespace

TEST_CASE("an empty queue has nothing to release") {
  Fixture f;
  CHECK(f.q.front_state(100, 100) == ReplyQueue::State::wait);
  CHECK(f.drain(100, 100).empty());
}

TEST_CASE("a reply waiting for nothing but its turn leaves at once") {
  Fixture f;
  f.push("+PONG\r\n", 0, HoldKind::ordered);
  CHECK(f.drain(0) == V{"+PONG\r\n"});
}

TEST_CASE("a covered reply is held until its probe is released") {
  Fixture f;
  f.push("+OK\r\n", 3);
  CHECK(f.drain(2) == V{});
  CHECK(f.q.size() == 1);
  CHECK(f.drain(3) == V{"+OK\r\n"});
}

TEST_CASE("a held reply holds every reply behind it, even ready ones") {
  Fixture f;
  f.push("+OK\r\n", 5);
  f.push("$1\r\nv\r\n", 0, HoldKind::ordered);
  f.push("+PONG\r\n", 0, HoldKind::ordered);
  CHECK(f.drain(4) == V{});
  CHECK(f.q.size() == 3);
  CHECK(f.drain(5) == V{"+OK\r\n", "$1\r\nv\r\n", "+PONG\r\n"});
}

TEST_CASE("pipelined writes of successive probes leave as each probe is released, in order") {
  Fixture f;
  f.push(":1\r\n", 1);
  f.push(":2\r\n", 1);
  f.push("+PONG\r\n", 0, HoldKind::ordered);
  f.push(":3\r\n", 2);
  f.push("$-1\r\n", 2, HoldKind::read);
  f.push("+OK\r\n", 0, HoldKind::ordered);
  CHECK(f.drain(1) == V{":1\r\n", ":2\r\n", "+PONG\r\n"});
  CHECK(f.q.size() == 3);
  CHECK(f.drain(2) == V{":3\r\n", "$-1\r\n", "+OK\r\n"});
}

TEST_CASE("a reply released under an earlier probe's schedule is not held by a later probe") {
  // A read that only waits for a known offset joins an older batch (lower
  // probe) than a write queued before it: it leaves when its turn comes.
  Fixture f;
  f.push("+OK\r\n", 4);
  f.push("$1\r\nv\r\n", 2, HoldKind::read);
  CHECK(f.drain(3) == V{});
  CHECK(f.drain(4) == V{"+OK\r\n", "$1\r\nv\r\n"});
}

TEST_CASE("a failed probe lets its replies leave as failures, and what follows is released as usual") {
  Fixture f;
  f.push("+OK\r\n", 2);
  f.push(":7\r\n", 2);
  f.push("+PONG\r\n", 0, HoldKind::ordered);
  f.push("+OK\r\n", 3);
  CHECK(f.drain(1, 2) == V{"<failed:+OK\r\n>", "<failed::7\r\n>", "+PONG\r\n"});
  CHECK(f.drain(3, 2) == V{"+OK\r\n"});
}

TEST_CASE("a released probe wins over a failure reported for it") {
  Fixture f;
  f.push("+OK\r\n", 2);
  CHECK(f.drain(2, 2) == V{"+OK\r\n"});
}

TEST_CASE("held bytes count exactly the held replies and go back to zero") {
  Fixture f;
  f.push("+OK\r\n", 1);           // 5
  f.push("$3\r\nabc\r\n", 2);     // 9
  f.push("", 2);                  // a dropped reply (CLIENT REPLY OFF) that keeps its place
  f.push("+PONG\r\n", 0);         // 7
  CHECK(f.q.bytes() == 21);
  CHECK(f.q.size() == 4);
  CHECK(f.drain(1) == V{"+OK\r\n"});
  CHECK(f.q.bytes() == 16);
  CHECK(f.drain(2) == V{"$3\r\nabc\r\n", "", "+PONG\r\n"});
  CHECK(f.q.bytes() == 0);
}

TEST_CASE("clear drops everything held and says how many bytes") {
  Fixture f;
  f.push("+OK\r\n", 9);
  f.push("+PONG\r\n", 0);
  CHECK(f.q.clear() == 12);
  CHECK(f.q.empty());
  CHECK(f.q.bytes() == 0);
  f.push("+OK\r\n", 0);  // usable again
  CHECK(f.drain(0) == V{"+OK\r\n"});
}

TEST_CASE("entries keep their close_after flag and the caller's time") {
  Fixture f;
  f.q.push("-ERR bad\r\n", ReplyQueue::Entry{.probe = 0, .since_ns = 42, .close_after = true});
  REQUIRE(!f.q.empty());
  CHECK(f.q.front().close_after);
  CHECK(f.q.front().since_ns == 42);
  CHECK(f.q.front().len == 10);
  f.q.pop_front();
}

TEST_CASE("only messages held: no reply is due") {
  Fixture f;
  CHECK_FALSE(f.q.holds_reply());
  f.push("*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n", 1, HoldKind::notification, /*message=*/true);
  CHECK_FALSE(f.q.holds_reply());
  f.push("+PONG\r\n", 0, HoldKind::ordered);
  CHECK(f.q.holds_reply());
}

TEST_CASE("held replies are counted by kind, with their bytes") {
  Fixture f;
  f.push("+OK\r\n", 1, HoldKind::write);
  f.push("+OK\r\n", 1, HoldKind::write);
  f.push("$1\r\nv\r\n", 1, HoldKind::read);
  f.push("+PONG\r\n", 0, HoldKind::ordered);
  uint64_t counts[ReplyQueue::kKindCount] = {}, bytes[ReplyQueue::kKindCount] = {};
  f.q.add_by_kind(counts, bytes);
  CHECK(counts[static_cast<size_t>(HoldKind::write)] == 2);
  CHECK(bytes[static_cast<size_t>(HoldKind::write)] == 10);
  CHECK(counts[static_cast<size_t>(HoldKind::read)] == 1);
  CHECK(bytes[static_cast<size_t>(HoldKind::read)] == 7);
  CHECK(counts[static_cast<size_t>(HoldKind::ordered)] == 1);
  CHECK(counts[static_cast<size_t>(HoldKind::notification)] == 0);
}

TEST_CASE("a deep pipeline is released in order and frees its bytes") {
  Fixture f;
  std::vector<std::string> want;
  for (int i = 0; i < 10000; ++i) {
    std::string r = ":" + std::to_string(i) + "\r\n";
    f.push(r, 1 + static_cast<uint64_t>(i / 1000), i % 3 ? HoldKind::write : HoldKind::ordered);
    want.push_back(r);
  }
  std::vector<std::string> got;
  for (uint64_t p = 1; p <= 10; ++p) {
    V step = f.drain(p);
    CHECK(step.size() == 1000);
    got.insert(got.end(), step.begin(), step.end());
  }
  CHECK(got == want);
  CHECK(f.q.bytes() == 0);
}
