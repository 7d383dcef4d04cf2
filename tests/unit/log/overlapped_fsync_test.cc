// Overlapped group commits (LogOptions::fsync_overlap): a batch written while
// an fdatasync is in flight gets its own fdatasync at once, and the durable
// offset moves only to what a completed fdatasync covered.  The fake file
// system holds every fdatasync until the test finishes it, so each step is
// observed, not timed.
#include <doctest/doctest.h>

#include <cerrno>

#include "log/log_format.h"
#include "log_test_util.h"

using namespace dp::log;
using namespace dp::log::test;

namespace {

constexpr uint64_t kBase = 100;  // the log starts at this offset

// A log whose every fdatasync after the start is held.  Declared after the
// log, the guard lets held fdatasyncs finish before the log is destroyed.
struct HeldLog {
  FakeFileSystem fs;
  std::unique_ptr<DurableLog> log;
  struct Release {
    FakeFileSystem* fs;
    ~Release() { fs->hold_syncs(false); }
  } release{&fs};

  explicit HeldLog(uint32_t overlap = 2, uint64_t segment_bytes = 1 << 16) {
    auto o = fake_options(&fs, segment_bytes);
    o.fsync_overlap = overlap;
    log = open_log(o);
    REQUIRE(log);
    log->reset("r", kBase);
    REQUIRE(wait_durable(*log, kBase));  // the reset's own syncs are not held
    fs.hold_syncs(true);
  }
  ~HeldLog() {
    fs.hold_syncs(false);
    log.reset();
  }

  bool wait_held(size_t n) {
    return dp::test::wait_until([&] { return fs.held_syncs() == n; },
                                std::to_string(n) + " fdatasyncs in flight", dp::test::kDefaultWait,
                                [&] { return "held=" + std::to_string(fs.held_syncs()); });
  }
  bool wait_completed(uint64_t n) {
    return dp::test::wait_until([&] { return fs.completed_syncs() >= n; },
                                std::to_string(n) + " fdatasyncs returned", dp::test::kDefaultWait,
                                [&] { return "completed=" + std::to_string(fs.completed_syncs()); });
  }
  // Lets the held fdatasyncs finish, closes the log and restarts on `img`
  // (what a power loss had left): the reopened log, or nullptr and *err.
  std::unique_ptr<DurableLog> reboot_into(const FakeFileSystem::Image& img, std::string* err) {
    fs.hold_syncs(false);
    log.reset();
    fs.reboot(img);
    return open_log(fake_options(&fs, 1 << 16), err);
  }
  // Appends `bytes` and waits until its batch is in its own fdatasync.
  uint64_t append_held(const std::string& bytes) {
    size_t before = fs.held_syncs();
    log->append(bytes);
    CHECK(wait_held(before + 1));
    return log->end_offset();
  }
};

}  // namespace

TEST_CASE("a batch written while an fdatasync is in flight gets its own fdatasync at once") {
  HeldLog h;
  const uint64_t first = h.append_held("first");
  const uint64_t second = h.append_held("second");  // the old writer waited for the first
  CHECK(h.log->stats().batches == 2);
  CHECK(h.log->durable_offset() == kBase);  // neither has completed
  CHECK(kBase < first);
  CHECK(first < second);
}

TEST_CASE("the durable offset never passes what a completed fdatasync covered") {
  HeldLog h;
  const uint64_t first = h.append_held("first");
  const uint64_t second = h.append_held("second");
  const uint64_t base_completed = h.fs.completed_syncs();
  h.fs.finish_sync(0);  // the first: it covers "first" only
  REQUIRE(h.wait_completed(base_completed + 1));
  REQUIRE(wait_durable(*h.log, first));
  CHECK(h.log->durable_offset() == first);
  h.fs.finish_sync(0);
  REQUIRE(wait_durable(*h.log, second));
  CHECK(h.log->durable_offset() == second);
  std::string err;
  CHECK(read_all(&h.fs, kBase, second, &err) == "firstsecond");
}

TEST_CASE("fdatasyncs completing out of order publish the highest end covered") {
  HeldLog h;
  const uint64_t first = h.append_held("first");
  const uint64_t second = h.append_held("second");
  const uint64_t base_completed = h.fs.completed_syncs();
  h.fs.finish_sync(1);  // the second finishes first: it covers both batches
  REQUIRE(wait_durable(*h.log, second));
  CHECK(h.log->durable_offset() == second);
  h.fs.finish_sync(0);  // the first, late: covers less, must not move the offset back
  REQUIRE(h.wait_completed(base_completed + 2));
  CHECK(h.log->durable_offset() == second);
  CHECK(first < second);
  CHECK_FALSE(h.log->failed());
}

TEST_CASE("a failed fdatasync publishes nothing, whatever an overlapping one returns") {
  HeldLog h;
  const uint64_t first = h.append_held("first");
  const uint64_t second = h.append_held("second");
  const uint64_t base_completed = h.fs.completed_syncs();
  SUBCASE("the later one fails, then the earlier one succeeds") {
    h.fs.finish_sync(1, EIO);
    dp::test::wait_until([&] { return h.log->failed(); }, "the log to fail");
    h.fs.finish_sync(0);
  }
  SUBCASE("the earlier one fails, then the later one succeeds") {
    h.fs.finish_sync(0, EIO);
    dp::test::wait_until([&] { return h.log->failed(); }, "the log to fail");
    h.fs.finish_sync(0);
  }
  REQUIRE(h.wait_completed(base_completed + 2));
  CHECK(h.log->failed());
  CHECK(h.log->durable_offset() == kBase);
  CHECK(h.log->failure_reason().find("fdatasync") != std::string::npos);
  CHECK(h.log->failure_reason().find("EIO") != std::string::npos);
  CHECK(first < second);
}

TEST_CASE("with fsync_overlap 1 the next batch waits for the fdatasync in flight") {
  HeldLog h(1);
  const uint64_t first = h.append_held("first");
  h.log->append("second");
  // The only committer is inside the held fdatasync: nothing can write.
  CHECK(h.log->stats().batches == 1);
  h.fs.finish_sync(0);
  REQUIRE(wait_durable(*h.log, first));
  REQUIRE(h.wait_held(1));  // the second batch, written only now
  CHECK(h.log->stats().batches == 2);
  h.fs.finish_sync(0);
  REQUIRE(wait_durable(*h.log, first + 6));
}

TEST_CASE("shutdown completes the fdatasyncs in flight: a crash right after keeps every byte") {
  HeldLog h;
  h.append_held("first");
  const uint64_t second = h.append_held("second");
  h.fs.hold_syncs(false);
  h.log.reset();  // joins the committers, each after its fdatasync
  h.fs.reboot(h.fs.crash_image());
  std::string err;
  auto log = open_log(fake_options(&h.fs, 1 << 16), &err);
  REQUIRE_MESSAGE(log, err);
  CHECK(log->end_offset() == second);
  CHECK(read_all(&h.fs, kBase, second, &err) == "firstsecond");
}

// ---- what recovery makes of overlapped groups after a power loss ----

namespace {

// The segment as written so far, with `from`..`to` zeroed: those sectors
// did not reach the disk.
FakeFileSystem::Image image_without(FakeFileSystem* fs, size_t from, size_t to) {
  FakeFileSystem::Image img = fs->crash_image();
  std::string seg = fs->contents(seg_path(kBase));
  for (size_t i = from; i < to && i < seg.size(); ++i) seg[i] = 0;
  img[seg_path(kBase)] = seg;
  return img;
}

}  // namespace

TEST_CASE("a group intact behind a torn one whose fdatasync was in flight is a torn tail") {
  HeldLog h;
  h.append_held(std::string(600, 'a'));  // frame at 80..708: two sectors
  h.append_held(std::string(100, 'b'));
  // The second sector of the first group was lost, the second group's sector
  // reached the disk: legal while both fdatasyncs were in flight.
  std::string err;
  auto log = h.reboot_into(image_without(&h.fs, 512, 708), &err);
  REQUIRE_MESSAGE(log, err);
  CHECK(log->end_offset() == kBase);
  CHECK(log->recovery().truncated_bytes > 0);
}

TEST_CASE("damage before what was durable when a later group was written is corruption") {
  HeldLog h;
  const uint64_t first = h.append_held(std::string(600, 'a'));  // frame at 80..708
  h.fs.finish_sync(0);
  REQUIRE(wait_durable(*h.log, first));
  h.append_held(std::string(100, 'b'));  // frame at 708..836, in flight
  h.append_held(std::string(100, 'c'));  // written while "b" syncs
  std::string err;
  SUBCASE("damage in the group durable before both") {
    CHECK_FALSE(h.reboot_into(image_without(&h.fs, 300, 301), &err));
    CHECK(err.find("bad frame followed by later data") != std::string::npos);
  }
  SUBCASE("damage in the group still in flight when the last was written") {
    auto log = h.reboot_into(image_without(&h.fs, 750, 751), &err);
    REQUIRE_MESSAGE(log, err);
    CHECK(log->end_offset() == first);
  }
}

TEST_CASE("a group further than the sync-back field can say behind the last fdatasync waits for it") {
  // The frame's sync-back field holds at most kMaxSyncBack bytes; a group
  // written behind a larger one still in flight could only claim too much
  // durable (recovery would then call a torn tail corruption).  So it waits.
  HeldLog h(2, 64u << 20);
  const std::string big(format::kMaxSyncBack + 4096, 'x');
  h.log->append(big);
  REQUIRE(h.wait_held(1));
  h.log->append("small");
  // Negative proof: nothing to observe but the absence of a second
  // fdatasync; with overlap and no limit it would start at once.
  std::this_thread::sleep_for(dp::test::scaled(std::chrono::milliseconds(50)));
  CHECK(h.fs.held_syncs() == 1);
  h.fs.finish_sync(0);
  REQUIRE(h.wait_held(1));  // now the small group's own
  h.fs.finish_sync(0);
  CHECK(wait_durable(*h.log, kBase + big.size() + 5));
}
