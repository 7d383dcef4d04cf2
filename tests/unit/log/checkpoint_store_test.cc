#include "log/checkpoint_store.h"

#include <doctest/doctest.h>

#include "log/manifest.h"
#include "log_test_util.h"

using namespace dp::log;
using namespace dp::log::test;

namespace {
const std::string kCk = kDir + "/checkpoints";

void commit_checkpoint(FakeFileSystem* fs, const std::string& replid, uint64_t offset,
                       const std::string& rdb) {
  std::string err;
  auto store = CheckpointStore::open(kDir, fs, &err);
  REQUIRE_MESSAGE(store, err);
  auto w = store->begin(replid, offset, &err);
  REQUIRE(w);
  REQUIRE(w->write(rdb, &err));
  REQUIRE_MESSAGE(w->commit(&err), err);
}
}  // namespace

TEST_CASE("a committed checkpoint is the latest after reopening the store") {
  FakeFileSystem fs;
  commit_checkpoint(&fs, "r", 500, "REDIS0009...");
  std::string err;
  auto store = CheckpointStore::open(kDir, &fs, &err);
  REQUIRE(store);
  auto latest = store->latest();
  REQUIRE(latest);
  CHECK(latest->replid == "r");
  CHECK(latest->offset == 500);
  CHECK(latest->size == 12);
  CHECK(fs.contents(latest->path) == "REDIS0009...");
}

TEST_CASE("an uncommitted checkpoint leaves no file and keeps the previous one") {
  FakeFileSystem fs;
  commit_checkpoint(&fs, "r", 500, "old");
  std::string err;
  auto store = CheckpointStore::open(kDir, &fs, &err);
  {
    auto w = store->begin("r", 900, &err);
    REQUIRE(w->write("partial", &err));
  }  // destroyed without commit
  std::vector<std::string> names;
  fs.list_dir(kCk, &names);
  for (auto& n : names) CHECK(n.find(".tmp") == std::string::npos);
  CHECK(store->latest()->offset == 500);
}

TEST_CASE("prune keeps only the newest checkpoint") {
  FakeFileSystem fs;
  commit_checkpoint(&fs, "r", 500, "old");
  commit_checkpoint(&fs, "r", 900, "new");
  std::string err;
  auto store = CheckpointStore::open(kDir, &fs, &err);
  store->prune();
  CHECK_FALSE(fs.exists(kCk + "/00000000000000000500.rdb"));
  CHECK(fs.exists(kCk + "/00000000000000000900.rdb"));
}

TEST_CASE("a crash before the MANIFEST is replaced keeps the previous checkpoint") {
  FakeFileSystem fs;
  commit_checkpoint(&fs, "r", 500, "old");
  auto image = fs.crash_image();
  fs.crash_after(3, false);  // create, write, fdatasync of the new temp file
  commit_checkpoint(&fs, "r", 900, "new");
  fs.reboot(*fs.taken_image());
  std::string err;
  auto store = CheckpointStore::open(kDir, &fs, &err);
  REQUIRE_MESSAGE(store, err);
  CHECK(store->latest()->offset == 500);
}

TEST_CASE("a damaged MANIFEST is refused with its path") {
  FakeFileSystem fs;
  commit_checkpoint(&fs, "r", 500, "x");
  flip_byte(&fs, kCk + "/MANIFEST", 3);
  std::string err;
  CHECK_FALSE(CheckpointStore::open(kDir, &fs, &err));
  CHECK(err.find(kCk + "/MANIFEST") != std::string::npos);
}

TEST_CASE("recovery starts an empty log at the checkpoint offset") {
  FakeFileSystem fs;
  commit_checkpoint(&fs, "r", 500, "x");
  auto log = open_log(fake_options(&fs));
  REQUIRE(log);
  CHECK(log->replid() == "r");
  CHECK(log->start_offset() == 500);
  CHECK(log->end_offset() == 500);
  log->append("abc");
  REQUIRE(wait_durable(*log, 503));
}

TEST_CASE("recovery drops segments wholly below a checkpoint inside the log") {
  FakeFileSystem fs;
  {
    auto log = open_log(fake_options(&fs, 256));
    log->reset("r", 0);
    for (int i = 0; i < 5; ++i) {
      log->append(std::string(100, 'a'));
      REQUIRE(wait_durable(*log, 100u * (i + 1)));
    }
  }
  commit_checkpoint(&fs, "r", 250, "x");
  auto log = open_log(fake_options(&fs, 256));
  REQUIRE(log);
  CHECK(log->start_offset() == 250);
  CHECK(log->end_offset() == 500);
  CHECK_FALSE(fs.exists(seg_path(0)));
  CHECK_FALSE(fs.exists(seg_path(100)));
  CHECK(fs.exists(seg_path(200)));
  std::string err;
  CHECK(read_all(&fs, 250, 500, &err).size() == 250);
}

TEST_CASE("a checkpoint of another history supersedes the log (reset not yet durable)") {
  FakeFileSystem fs;
  {
    auto log = open_log(fake_options(&fs));
    log->reset("old", 0);
    log->append("stale");
    REQUIRE(wait_durable(*log, 5));
  }
  commit_checkpoint(&fs, "new", 42, "x");
  auto log = open_log(fake_options(&fs));
  REQUIRE(log);
  CHECK(log->replid() == "new");
  CHECK(log->end_offset() == 42);
  CHECK_FALSE(fs.exists(seg_path(0)));
  CHECK(log->recovery().note.find("superseded") != std::string::npos);
}

TEST_CASE("a log of the checkpoint's history that starts after it is refused") {
  FakeFileSystem fs;
  {
    auto log = open_log(fake_options(&fs));
    log->reset("r", 1000);
    log->append("x");
    REQUIRE(wait_durable(*log, 1001));
  }
  commit_checkpoint(&fs, "r", 10, "x");
  std::string err;
  CHECK_FALSE(open_log(fake_options(&fs), &err));
  CHECK(err.find("missing") != std::string::npos);
}
