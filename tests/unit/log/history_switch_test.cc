// The history switch (log/history_switch.h) with a crash after every file
// operation, torn sectors included: recovery finds either the old history
// complete (its checkpoint and every log byte reported durable) or the new
// one complete (its checkpoint and a log starting at its offset), never a
// log that starts after its only checkpoint, and never the old history
// once the new one was reported durable.
#include "log/history_switch.h"

#include <doctest/doctest.h>

#include <atomic>

#include "log/manifest.h"
#include "log_test_util.h"

using namespace dp::log;
using namespace dp::log::test;

namespace {

const std::string kOldRdb = "REDIS0011-old-checkpoint";
const uint64_t kNewOffset = 5000;  // beyond the old log's end: a backlog that did not cover it

std::string new_rdb() {
  std::string r = "REDIS0080-new-";
  while (r.size() < 3000) r += "0123456789abcdef";
  return r;
}

struct Acked {
  std::atomic<int> history{0};  // 1 old, 2 new
  std::atomic<uint64_t> end{0};
};

// The old history: checkpoint ("old", 0) and log bytes 1..N; then the
// switch to ("new", 5000) with its RDB, then stream bytes of the new history.
void workload(FakeFileSystem* fs, Acked* acked, std::string* old_data, bool same_replid) {
  std::string err;
  auto store = CheckpointStore::open(kDir, fs, &err);
  REQUIRE_MESSAGE(store, err);
  auto log = open_log(fake_options(fs, 1024), &err);
  REQUIRE_MESSAGE(log, err);
  {
    auto w = store->begin("old", 0, &err);
    REQUIRE(w);
    if (!w->write(kOldRdb, &err) || !w->commit(&err)) return;  // the crash took the disk
  }
  log->reset("old", 0);
  for (int i = 0; i < 8; ++i) {
    std::string rec(150, static_cast<char>('a' + i));
    *old_data += rec;
    log->append(rec);
    if (!wait_durable(*log, old_data->size())) return;
    acked->history = 1;
    acked->end = old_data->size();
  }
  const std::string replid = same_replid ? "old" : "new";
  auto sw = HistorySwitch::begin(store.get(), log.get(), replid, kNewOffset, &err);
  if (!sw) return;
  const std::string rdb = new_rdb();
  for (size_t i = 0; i < rdb.size(); i += 700)
    if (!sw->write(std::string_view(rdb).substr(i, 700), &err)) return;
  if (!sw->commit(&err)) return;
  if (!wait_durable(*log, kNewOffset) || log->replid() != replid) return;
  log->append("xyz");
  if (!wait_durable(*log, kNewOffset + 3)) return;
  acked->history = 2;
  acked->end = kNewOffset + 3;
}

void check_recovered(FakeFileSystem* fs, int acked_hist, uint64_t acked_end, const std::string& old_data,
                     bool same_replid, uint64_t n) {
  std::string err;
  auto store = CheckpointStore::open(kDir, fs, &err);
  REQUIRE_MESSAGE(store, "crash after op " << n << ": " << err);
  auto log = open_log(fake_options(fs, 1024), &err);
  REQUIRE_MESSAGE(log, "crash after op " << n << ": " << err);
  const RecoveryInfo& r = log->recovery();
  auto cp = store->latest();
  INFO("crash after op " << n << ": log " << r.replid << " " << r.start_offset << ".." << r.end_offset
                         << " (" << r.note << "), checkpoint "
                         << (cp ? cp->replid + "@" + std::to_string(cp->offset) : "none"));
  if (!cp) {  // crashed before the old checkpoint was durable: nothing was acknowledged
    CHECK(acked_hist == 0);
    return;
  }
  const std::string new_id = same_replid ? "old" : "new";
  if (cp->offset == kNewOffset) {
    CHECK(cp->replid == new_id);
    CHECK(fs->contents(cp->path) == new_rdb());
    CHECK(r.replid == new_id);
    CHECK(r.start_offset == kNewOffset);
    CHECK(r.end_offset <= kNewOffset + 3);
    if (acked_hist == 2) CHECK(r.end_offset == kNewOffset + 3);
    CHECK(read_all(fs, kNewOffset, r.end_offset, &err) == std::string("xyz").substr(0, r.end_offset - kNewOffset));
    CHECK(err == "");
  } else {
    CHECK(acked_hist != 2);  // a reported new history is never undone
    CHECK(cp->replid == "old");
    CHECK(cp->offset == 0);
    CHECK(fs->contents(cp->path) == kOldRdb);
    CHECK(r.replid == "old");
    CHECK(r.start_offset == 0);
    if (acked_hist == 1) CHECK(r.end_offset >= acked_end);
    CHECK(read_all(fs, 0, r.end_offset, &err) == old_data.substr(0, r.end_offset));
    CHECK(err == "");
  }
}

void crash_everywhere(bool tear, bool same_replid) {
  uint64_t n = 1;
  for (; n < 4000; ++n) {
    FakeFileSystem fs;
    Acked acked;
    int hist_at_crash = 0;
    uint64_t end_at_crash = 0;
    fs.at_crash = [&] {
      hist_at_crash = acked.history.load();
      end_at_crash = acked.end.load();
    };
    fs.crash_after(n, tear, static_cast<uint32_t>(n));
    std::string old_data;
    workload(&fs, &acked, &old_data, same_replid);
    auto image = fs.taken_image();
    if (!image) break;  // every crash point covered
    fs.reboot(*image);
    check_recovered(&fs, hist_at_crash, end_at_crash, old_data, same_replid, n);
  }
  CHECK(n > 50);
  MESSAGE("crash points tested: " << n - 1);
}

}  // namespace

TEST_CASE("a crash at any step of a history switch leaves the old history or the new one, complete") {
  crash_everywhere(false, false);
  crash_everywhere(true, false);
}

TEST_CASE("a full resync under the same replid (backlog no longer covers the log) switches atomically too") {
  crash_everywhere(false, true);
  crash_everywhere(true, true);
}

TEST_CASE("an abandoned or failed switch leaves the old history and checkpoint untouched") {
  FakeFileSystem fs;
  std::string err;
  auto store = CheckpointStore::open(kDir, &fs, &err);
  auto log = open_log(fake_options(&fs, 1024), &err);
  REQUIRE(log);
  {
    auto w = store->begin("old", 0, &err);
    REQUIRE((w && w->write(kOldRdb, &err) && w->commit(&err)));
  }
  log->reset("old", 0);
  log->append("abc");
  REQUIRE(wait_durable(*log, 3));
  {
    auto sw = HistorySwitch::begin(store.get(), log.get(), "new", kNewOffset, &err);
    REQUIRE(sw);
    REQUIRE(sw->write("REDIS0080-partial", &err));
  }  // the RDB was cut: destroyed before commit
  CHECK(log->replid() == "old");
  CHECK(log->end_offset() == 3);
  CHECK(store->latest()->replid == "old");
  {
    fs.fail_sync = true;  // the commit's fdatasync fails
    auto sw = HistorySwitch::begin(store.get(), log.get(), "new", kNewOffset, &err);
    REQUIRE(sw);
    REQUIRE(sw->write("REDIS0080-whole", &err));
    CHECK_FALSE(sw->commit(&err));
    CHECK(err.find("fdatasync") != std::string::npos);
    fs.fail_sync = false;
  }
  CHECK(log->replid() == "old");
  CHECK(log->end_offset() == 3);
  CHECK(store->latest()->replid == "old");
  CHECK(fs.contents(store->latest()->path) == kOldRdb);
}

TEST_CASE("a new history's checkpoint at the live checkpoint's offset does not overwrite its file") {
  // Crash after every file operation of the switch: the MANIFEST names the
  // old checkpoint with its own bytes, or the new one with its own.
  uint64_t n = 1;
  for (; n < 200; ++n) {
    FakeFileSystem fs;
    std::string err;
    auto store = CheckpointStore::open(kDir, &fs, &err);
    auto log = open_log(fake_options(&fs, 1024), &err);
    REQUIRE(log);
    {
      auto w = store->begin("old", 100, &err);
      REQUIRE((w && w->write(kOldRdb, &err) && w->commit(&err)));
    }
    fs.crash_after(n);
    {
      auto sw = HistorySwitch::begin(store.get(), log.get(), "other", 100, &err);
      REQUIRE(sw);
      REQUIRE(sw->write("REDIS0080-other", &err));
      REQUIRE(sw->commit(&err));
      REQUIRE(wait_durable(*log, 100));
    }
    log.reset();
    auto image = fs.taken_image();
    if (!image) break;
    fs.reboot(*image);
    auto again = CheckpointStore::open(kDir, &fs, &err);
    REQUIRE_MESSAGE(again, "crash after op " << n << ": " << err);
    auto cp = again->latest();
    REQUIRE(cp);
    INFO("crash after op " << n << ": checkpoint " << cp->replid << " at " << cp->path);
    CHECK(fs.contents(cp->path) == (cp->replid == "old" ? kOldRdb : std::string("REDIS0080-other")));
  }
  CHECK(n > 5);
}
