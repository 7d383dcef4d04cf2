// Producer, writer and observer threads together; meant for ThreadSanitizer.
#include <doctest/doctest.h>

#include <atomic>
#include <thread>

#include "log_test_util.h"

using namespace dp::log;
using namespace dp::log::test;

TEST_CASE("durable_offset only grows and never passes end while producers append") {
  FakeFileSystem fs;
  std::atomic<uint64_t> notified{0};
  std::atomic<bool> done{false}, went_back{false};
  auto o = fake_options(&fs, 1 << 14);
  DurableLog* raw = nullptr;
  o.on_durable = [&] { notified.fetch_add(1); };
  auto log = open_log(o);
  REQUIRE(log);
  raw = log.get();
  log->reset("r", 0);
  std::thread observer([&] {
    uint64_t last = 0;
    while (!done.load()) {
      uint64_t d = raw->durable_offset();
      if (d < last) went_back = true;
      last = d;
      (void)raw->stats();
      (void)raw->failed();
    }
  });
  std::string expect;
  for (int i = 0; i < 2000; ++i) {
    std::string rec = std::to_string(i) + ";";
    expect += rec;
    log->append(rec);
    if (i % 500 == 0) log->set_replid("r" + std::to_string(i));
    CHECK(log->durable_offset() <= log->end_offset());
  }
  REQUIRE(wait_durable(*log, expect.size()));
  done = true;
  observer.join();
  CHECK_FALSE(went_back.load());
  CHECK(notified.load() >= 1);
  std::string err;
  CHECK(read_all(&fs, 0, expect.size(), &err) == expect);
}

TEST_CASE("three overlapping committers through rolls, drops and a reset keep every byte in order") {
  FakeFileSystem fs;
  auto o = fake_options(&fs, 1024);  // a roll every few batches
  o.fsync_overlap = 3;
  std::atomic<uint64_t> notified{0};
  o.on_durable = [&] { notified.fetch_add(1); };
  auto log = open_log(o);
  REQUIRE(log);
  log->reset("a", 0);
  for (int i = 0; i < 300; ++i) log->append(std::string(1 + i % 90, 'a'));
  log->reset("b", 50);  // while the first history is still being written
  std::string expect;
  for (int i = 0; i < 600; ++i) {
    std::string rec = std::to_string(i) + ";";
    expect += rec;
    log->append(rec);
    if (i == 300) log->drop_below(50 + expect.size() / 2);
  }
  REQUIRE(wait_durable(*log, 50 + expect.size()));
  CHECK_FALSE(log->failed());
  CHECK(log->durable_offset() == 50 + expect.size());
  CHECK(notified.load() >= 1);
  std::string err;
  const uint64_t from = log->start_offset();
  CHECK(read_all(&fs, from, 50 + expect.size(), &err) == expect.substr(from - 50));
  CHECK(err == "");
}
