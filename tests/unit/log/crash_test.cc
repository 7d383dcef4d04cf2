// Fault injection: a crash after every single file operation, with and
// without torn sectors, and failing fsync / full disk.  After each crash,
// recovery must return every byte the log had reported durable, and nothing
// that was not appended.
#include <doctest/doctest.h>

#include <atomic>
#include <random>

#include "log_test_util.h"

using namespace dp::log;
using namespace dp::log::test;

namespace {

struct Acked {
  std::atomic<uint64_t> end{0};
  std::atomic<int> history{0};  // 0 none, 1 "a", 2 "b"
};

// The test thread's record of what was reported durable, set only after
// wait_durable() returned.
void ack(Acked* a, int history, uint64_t end) {
  a->history = history;
  a->end = end;
}

// Runs a fixed workload; returns the data of history "a" (offset 0..) and
// "b" (offset 10..) through the out-params.
void workload(DurableLog* log, Acked* acked, std::string* a, std::string* b, bool with_reset) {
  std::mt19937 rng(3);
  log->reset("a", 0);
  REQUIRE(wait_durable(*log, 0));
  for (int i = 0; i < 12; ++i) {
    std::string rec(1 + rng() % 300, static_cast<char>('A' + i));
    *a += rec;
    log->append(rec);
    if (i == 5) log->set_replid("a2");
    if (i == 8) log->drop_below(400);
    if (!wait_durable(*log, a->size())) return;  // failed: the crash took the disk
    ack(acked, 1, a->size());
  }
  if (!with_reset) return;
  log->reset("b", 10);
  log->append("0123456789");
  *b = "0123456789";
  if (!wait_durable(*log, 20) || log->replid() != "b") return;
  ack(acked, 2, 20);
}

void check_recovered(FakeFileSystem* fs, const Acked& acked_at_crash_a, uint64_t acked_end,
                     int acked_hist, const std::string& a, const std::string& b, uint64_t n) {
  (void)acked_at_crash_a;
  std::string err;
  auto log = open_log(fake_options(fs, 1024), &err);
  REQUIRE_MESSAGE(log, "crash after op " << n << ": " << err);
  const RecoveryInfo& r = log->recovery();
  INFO("crash after op " << n << ", recovered " << r.replid << " " << r.start_offset << ".."
                         << r.end_offset << " note: " << r.note);
  if (r.replid == "b") {
    CHECK(r.start_offset == 10);
    CHECK(r.end_offset <= 20);
    CHECK(read_all(fs, 10, r.end_offset, &err) == b.substr(0, r.end_offset - 10));
    if (acked_hist == 2) CHECK(r.end_offset >= acked_end);
  } else {
    CHECK(acked_hist != 2);  // a durable reset is never undone
    CHECK(r.end_offset <= a.size());
    if (acked_hist == 1) CHECK(r.end_offset >= acked_end);
    uint64_t from = r.start_offset;
    CHECK(read_all(fs, from, r.end_offset, &err) == a.substr(from, r.end_offset - from));
    CHECK(err == "");
  }
}

void crash_everywhere(bool tear, bool with_reset) {
  uint64_t n = 1;
  for (; n < 2000; ++n) {
    FakeFileSystem fs;
    Acked acked;
    uint64_t end_at_crash = 0;
    int hist_at_crash = 0;
    fs.at_crash = [&] {
      end_at_crash = acked.end.load();
      hist_at_crash = acked.history.load();
    };
    fs.crash_after(n, tear, static_cast<uint32_t>(n));
    std::string a, b;
    {
      auto log = open_log(fake_options(&fs, 1024));
      REQUIRE(log);
      workload(log.get(), &acked, &a, &b, with_reset);
    }
    auto image = fs.taken_image();
    if (!image) break;  // the workload needed fewer operations: all points covered
    fs.reboot(*image);
    check_recovered(&fs, acked, end_at_crash, hist_at_crash, a, b, n);
  }
  CHECK(n > 50);
  MESSAGE("crash points tested: " << n - 1);
}

}  // namespace

TEST_CASE("a crash after any file operation loses no reported byte and adds none") {
  crash_everywhere(false, false);
}

TEST_CASE("a crash with torn sectors loses no reported byte and is never called corruption") {
  crash_everywhere(true, false);
}

TEST_CASE("a crash during reset leaves exactly one history, never a mix") {
  crash_everywhere(false, true);
  crash_everywhere(true, true);
}

TEST_CASE("a failed fdatasync poisons the log: no progress is reported again") {
  FakeFileSystem fs;
  std::atomic<int> calls{0};
  auto o = fake_options(&fs);
  o.on_durable = [&] { ++calls; };
  auto log = open_log(o);
  log->reset("r", 0);
  log->append("good");
  REQUIRE(wait_durable(*log, 4));
  fs.fail_sync = true;
  log->append("lost");
  wait_durable(*log, 8);
  CHECK(log->failed());
  CHECK(log->durable_offset() == 4);
  CHECK(log->failure_reason().find("fdatasync") != std::string::npos);
  CHECK(log->failure_reason().find("EIO") != std::string::npos);
  CHECK(log->failure_reason().find(seg_path(0)) != std::string::npos);
  fs.fail_sync = false;  // the disk "recovers": the log must still not retry
  int before = calls.load();
  log->append("more");
  // Negative proof: the writer does not fsync again (nothing to observe first:
  // a retry, if any, would follow the append at once).
  std::this_thread::sleep_for(dp::test::scaled(std::chrono::milliseconds(20)));
  CHECK(log->durable_offset() == 4);
  CHECK(calls.load() == before);
  log.reset();
  auto after = open_log(o);
  REQUIRE(after);
  CHECK(after->end_offset() >= 4);
}

TEST_CASE("a full disk poisons the log with ENOSPC named in the reason") {
  FakeFileSystem fs;
  auto log = open_log(fake_options(&fs));
  log->reset("r", 0);
  log->append("fits");
  REQUIRE(wait_durable(*log, 4));
  fs.write_budget = 10;
  log->append(std::string(100, 'x'));
  wait_durable(*log, 104);
  CHECK(log->failed());
  CHECK(log->durable_offset() == 4);
  CHECK(log->failure_reason().find("ENOSPC") != std::string::npos);
}

TEST_CASE("a failed segment roll poisons the log instead of writing past the segment") {
  FakeFileSystem fs;
  auto log = open_log(fake_options(&fs, 256));
  log->reset("r", 0);
  log->append(std::string(100, 'a'));
  REQUIRE(wait_durable(*log, 100));
  fs.fail_sync = true;
  log->append(std::string(100, 'b'));  // needs a new segment
  wait_durable(*log, 200);
  CHECK(log->failed());
  CHECK(log->durable_offset() == 100);
}

TEST_CASE("bytes a crashed proxy left in the page cache are fsynced at open before they count as durable") {
  // The proxy died (not the machine) after writing a group and before its
  // fdatasync: the file holds the group, the disk does not.  Opening the log
  // reads it back and reports it durable, so the open must fdatasync it
  // first; otherwise a machine crash after the open loses bytes the log
  // already reported durable.
  FakeFileSystem fs;
  auto o = fake_options(&fs);
  {
    auto log = open_log(o);
    REQUIRE(log);
    log->reset("r", 0);
    REQUIRE(wait_durable(*log, 0));
  }
  const std::string before = fs.contents(seg_path(0));
  {
    auto log = open_log(o);
    REQUIRE(log);
    log->append("late");
    REQUIRE(wait_durable(*log, 4));
  }
  const std::string after = fs.contents(seg_path(0));
  REQUIRE(after != before);
  fs.set_contents(seg_path(0), before, true);   // what the disk holds
  fs.set_contents(seg_path(0), after, false);   // what the page cache holds
  uint64_t reported = 0;
  {
    auto log = open_log(o);
    REQUIRE(log);
    reported = log->durable_offset();
    CHECK(reported == 4);
  }
  FakeFileSystem machine;  // the machine crashes after that open
  machine.reboot(fs.crash_image());
  auto o2 = fake_options(&machine);
  auto log = open_log(o2);
  REQUIRE(log);
  CHECK(log->end_offset() >= reported);
}
