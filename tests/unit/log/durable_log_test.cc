// Behaviour of DurableLog on the fake file system (and once on disk).
#include "log/durable_log.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>

#include "log_test_util.h"

using namespace dp::log;
using namespace dp::log::test;

TEST_CASE("appended bytes become durable and are read back after reopening") {
  FakeFileSystem fs;
  std::atomic<int> calls{0};
  auto o = fake_options(&fs);
  o.on_durable = [&] { ++calls; };
  {
    auto log = open_log(o);
    REQUIRE(log);
    log->reset("r1", 100);
    log->append("hello ");
    log->append("world");
    CHECK(log->end_offset() == 111);
    REQUIRE(wait_durable(*log, 111));
    CHECK(log->unsynced_bytes() == 0);
    CHECK(calls.load() >= 1);
    CHECK(log->stats().fsyncs >= 1);
  }
  auto log = open_log(o);
  REQUIRE(log);
  CHECK(log->recovery().replid == "r1");
  CHECK(log->recovery().start_offset == 100);
  CHECK(log->recovery().end_offset == 111);
  CHECK(log->end_offset() == 111);
  std::string err;
  CHECK(read_all(&fs, 100, 111, &err) == "hello world");
  CHECK(err == "");
  CHECK(read_all(&fs, 105, 108, &err) == " wo");
}

TEST_CASE("the log rolls to new segments named by their first offset") {
  FakeFileSystem fs;
  auto o = fake_options(&fs, 1024);
  std::string all;
  {
    auto log = open_log(o);
    log->reset("r", 0);
    for (int i = 0; i < 40; ++i) {
      std::string rec(100, static_cast<char>('a' + i % 26));
      all += rec;
      log->append(rec);
      REQUIRE(wait_durable(*log, all.size()));
    }
  }
  std::vector<std::string> names;
  fs.list_dir(kDir, &names);
  CHECK(names.size() > 3);
  auto log = open_log(o);
  REQUIRE(log);
  CHECK(log->end_offset() == all.size());
  std::string err;
  CHECK(read_all(&fs, 0, all.size(), &err) == all);
  CHECK(read_all(&fs, 950, 1050, &err) == all.substr(950, 100));
}

TEST_CASE("set_replid is recorded at its offset and survives reopening") {
  FakeFileSystem fs;
  auto o = fake_options(&fs);
  {
    auto log = open_log(o);
    log->reset("old", 10);
    log->append("abc");
    log->set_replid("new");
    log->append("def");
    CHECK(log->replid() == "new");
    REQUIRE(wait_durable(*log, 16));
  }
  auto log = open_log(o);
  CHECK(log->replid() == "new");
  CHECK(log->end_offset() == 16);
  std::string err;
  CHECK(read_all(&fs, 10, 16, &err) == "abcdef");  // REPLID frames carry no stream bytes
}

TEST_CASE("reset replaces the old history: old segments are deleted, offsets restart") {
  FakeFileSystem fs;
  auto o = fake_options(&fs, 1024);
  {
    auto log = open_log(o);
    log->reset("a", 5000);
    log->append(std::string(3000, 'x'));
    REQUIRE(wait_durable(*log, 8000));
    log->reset("b", 20);
    CHECK(log->end_offset() == 20);
    CHECK(log->durable_offset() <= 20);
    log->append("new");
    REQUIRE(wait_durable(*log, 23));
  }
  std::vector<std::string> names;
  fs.list_dir(kDir, &names);
  CHECK(names == std::vector<std::string>{"00000000000000000020.seg"});
  auto log = open_log(o);
  CHECK(log->replid() == "b");
  CHECK(log->start_offset() == 20);
  CHECK(log->end_offset() == 23);
}

TEST_CASE("drop_below deletes only segments wholly at or below the offset") {
  FakeFileSystem fs;
  auto o = fake_options(&fs, 512);
  auto log = open_log(o);
  log->reset("r", 0);
  for (int i = 0; i < 10; ++i) {
    log->append(std::string(300, 'z'));
    REQUIRE(wait_durable(*log, 300u * (i + 1)));
  }
  log->drop_below(1000);
  log->append("x");
  REQUIRE(wait_durable(*log, 3001));
  std::string err;
  CHECK(read_all(&fs, 1000, 3001, &err).size() == 2001);
  CHECK(err == "");
  read_all(&fs, 0, 3001, &err);
  CHECK(err.find("starts at offset") != std::string::npos);  // bytes below were dropped
  CHECK(log->start_offset() == 1000);
}

TEST_CASE("read_range names the offset it lacks when asked past the end") {
  FakeFileSystem fs;
  auto log = open_log(fake_options(&fs));
  log->reset("r", 0);
  log->append("abc");
  REQUIRE(wait_durable(*log, 3));
  std::string err;
  read_all(&fs, 0, 10, &err);
  CHECK(err.find("only up to offset 3") != std::string::npos);
}

TEST_CASE("commit_delay_us still makes every append durable") {
  FakeFileSystem fs;
  auto o = fake_options(&fs);
  o.commit_delay_us = 2000;
  auto log = open_log(o);
  log->reset("r", 0);
  for (int i = 0; i < 50; ++i) log->append("0123456789");
  REQUIRE(wait_durable(*log, 500));
  CHECK(log->stats().batches < 50);
}

TEST_CASE("on a real directory the log preallocates, writes, and recovers") {
  char tmpl[] = "/tmp/dp-log-test-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  std::string dir = tmpl;
  LogOptions o;
  o.dir = dir + "/log";
  o.segment_bytes = 1 << 16;
  {
    std::string err;
    auto log = DurableLog::open(o, &err);
    REQUIRE_MESSAGE(log, err);
    log->reset("0123456789012345678901234567890123456789", 7);
    log->append("*1\r\n$4\r\nPING\r\n");
    REQUIRE(wait_durable(*log, 21));
  }
  CHECK(std::filesystem::file_size(o.dir + "/00000000000000000007.seg") == (1u << 16));
  std::string err;
  auto log = DurableLog::open(o, &err);
  REQUIRE_MESSAGE(log, err);
  CHECK(log->recovery().end_offset == 21);
  std::string got;
  CHECK(read_range(o.dir, 7, 21, [&](std::string_view c) { got.append(c); return true; }) == "");
  CHECK(got == "*1\r\n$4\r\nPING\r\n");
  log.reset();
  std::filesystem::remove_all(dir);
}
