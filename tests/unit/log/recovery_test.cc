// Each kind of damage recovery must tell apart (log/FORMAT.md rules 1-4).
#include "log/recovery.h"

#include <doctest/doctest.h>

#include "log/history_reset.h"
#include "log/segment.h"
#include "log_test_util.h"

using namespace dp::log;
using namespace dp::log::test;

namespace {
// Three group commits "aaaa" "bbbb" "cccc" at offsets 0..12 in one segment.
void write_three_groups(FakeFileSystem* fs, uint64_t segment_bytes = 4096) {
  auto log = open_log(fake_options(fs, segment_bytes));
  log->reset("r", 0);
  for (char c : {'a', 'b', 'c'}) {
    log->append(std::string(4, c));
    REQUIRE(wait_durable(*log, log->end_offset()));
  }
}
}  // namespace

TEST_CASE("a damaged last frame is a torn tail: dropped, zeroed, and the log goes on") {
  FakeFileSystem fs;
  write_three_groups(&fs);
  std::string seg = fs.contents(seg_path(0));
  flip_byte(&fs, seg_path(0), frame_pos(seg, 2) + format::kFrameHeaderSize + 1);
  std::string err;
  auto log = open_log(fake_options(&fs), &err);
  REQUIRE_MESSAGE(log, err);
  CHECK(log->recovery().end_offset == 8);
  CHECK(log->recovery().truncated_bytes == format::kFrameHeaderSize + 4);
  CHECK(log->recovery().note.find("torn tail") != std::string::npos);
  log->append("dd");
  REQUIRE(wait_durable(*log, 10));
  log.reset();
  log = open_log(fake_options(&fs), &err);
  REQUIRE_MESSAGE(log, err);
  CHECK(read_all(&fs, 0, 10, &err) == "aaaabbbbdd");
}

TEST_CASE("a frame cut short at the end of the file is a torn tail") {
  FakeFileSystem fs;
  write_three_groups(&fs);
  std::string seg = fs.contents(seg_path(0));
  cut_file(&fs, seg_path(0), frame_pos(seg, 2) + 10);
  std::string err;
  auto log = open_log(fake_options(&fs), &err);
  REQUIRE_MESSAGE(log, err);
  CHECK(log->end_offset() == 8);
}

TEST_CASE("a bad frame followed by a later group commit is corruption naming file and byte") {
  FakeFileSystem fs;
  write_three_groups(&fs);
  std::string seg = fs.contents(seg_path(0));
  size_t bad = frame_pos(seg, 1);
  flip_byte(&fs, seg_path(0), bad + format::kFrameHeaderSize);
  std::string err;
  auto log = open_log(fake_options(&fs), &err);
  CHECK_FALSE(log);
  CHECK(err.find(seg_path(0)) != std::string::npos);
  CHECK(err.find("at byte " + std::to_string(bad)) != std::string::npos);
}

TEST_CASE("a frame with a fixed-up checksum but the wrong offset is corruption") {
  FakeFileSystem fs;
  write_three_groups(&fs);
  std::string seg = fs.contents(seg_path(0));
  size_t pos = frame_pos(seg, 1);
  flip_byte(&fs, seg_path(0), pos + format::kFrameFirstOffset);
  fix_frame_checksum(&fs, seg_path(0), pos);
  std::string err;
  CHECK_FALSE(open_log(fake_options(&fs), &err));
  CHECK(err.find("corrupt segment") != std::string::npos);
}

TEST_CASE("damage inside one group commit with its later frames intact is a torn tail") {
  FakeFileSystem fs;
  auto o = fake_options(&fs);
  {
    auto log = open_log(o);
    log->reset("r", 0);
    log->append("1111");
    REQUIRE(wait_durable(*log, 4));
  }
  o.commit_delay_us = 200000;  // the next three calls land in one batch
  {
    auto log = open_log(o);
    log->append("aaaa");
    log->set_replid("r2");
    log->append("bbbb");
    REQUIRE(wait_durable(*log, 12));
    CHECK(log->stats().batches == 1);
  }
  std::string seg = fs.contents(seg_path(0));
  flip_byte(&fs, seg_path(0), frame_pos(seg, 1) + format::kFrameHeaderSize);  // "aaaa"
  std::string err;
  auto log = open_log(fake_options(&fs), &err);
  REQUIRE_MESSAGE(log, err);
  CHECK(log->end_offset() == 4);
  CHECK(log->replid() == "r");
}

TEST_CASE("damage in a segment that is not the last is corruption") {
  FakeFileSystem fs;
  write_three_groups(&fs, 128);  // one frame per segment
  std::string seg = fs.contents(seg_path(0));
  flip_byte(&fs, seg_path(0), frame_pos(seg, 0) + format::kFrameHeaderSize);
  std::string err;
  CHECK_FALSE(open_log(fake_options(&fs, 128), &err));
  CHECK(err.find(seg_path(0)) != std::string::npos);
}

TEST_CASE("a damaged segment header is corruption at byte 0") {
  FakeFileSystem fs;
  write_three_groups(&fs);
  flip_byte(&fs, seg_path(0), 20);
  std::string err;
  CHECK_FALSE(open_log(fake_options(&fs), &err));
  CHECK(err.find("at byte 0") != std::string::npos);
}

TEST_CASE("a missing segment in the middle of the chain is corruption") {
  FakeFileSystem fs;
  write_three_groups(&fs, 128);
  fs.unlink(seg_path(4));
  std::string err;
  CHECK_FALSE(open_log(fake_options(&fs, 128), &err));
  CHECK(err.find("previous segment ends at 4") != std::string::npos);
}

TEST_CASE("an interrupted reset with a whole reset.tmp is completed") {
  FakeFileSystem fs;
  write_three_groups(&fs);
  SegmentHeader h{77, "fresh"};
  REQUIRE(create_segment_file(&fs, kDir, format::kResetTempName, 4096, &h) == "");
  auto log = open_log(fake_options(&fs));
  REQUIRE(log);
  CHECK(log->replid() == "fresh");
  CHECK(log->end_offset() == 77);
  CHECK_FALSE(fs.exists(seg_path(0)));
}

TEST_CASE("an interrupted reset with a damaged reset.tmp leaves the old history") {
  FakeFileSystem fs;
  write_three_groups(&fs);
  SegmentHeader h{77, "fresh"};
  REQUIRE(create_segment_file(&fs, kDir, format::kResetTempName, 4096, &h) == "");
  flip_byte(&fs, kDir + "/" + format::kResetTempName, 30);
  auto log = open_log(fake_options(&fs));
  REQUIRE(log);
  CHECK(log->replid() == "r");
  CHECK(log->end_offset() == 12);
  CHECK_FALSE(fs.exists(kDir + "/" + format::kResetTempName));
}
