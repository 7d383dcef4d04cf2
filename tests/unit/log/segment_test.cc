#include "log/segment.h"

#include <doctest/doctest.h>

using namespace dp::log;

TEST_CASE("segment names are 20-digit first offsets and parse back") {
  CHECK(segment_name(1000) == "00000000000000001000.seg");
  CHECK(parse_segment_name("00000000000000001000.seg") == 1000u);
  CHECK(parse_segment_name(segment_name(UINT64_MAX)) == UINT64_MAX);
  CHECK_FALSE(parse_segment_name("0000000000000000100.seg").has_value());
  CHECK_FALSE(parse_segment_name("0000000000000000100x.seg").has_value());
  CHECK_FALSE(parse_segment_name("00000000000000001000.tmp").has_value());
}

TEST_CASE("segment header round-trips and any flipped byte is detected") {
  SegmentHeader h{12345, std::string(40, 'a')};
  unsigned char buf[format::kSegmentHeaderSize];
  encode_segment_header(h, buf);
  SegmentHeader back;
  std::string bytes(reinterpret_cast<char*>(buf), sizeof buf);
  REQUIRE(decode_segment_header(bytes, &back) == "");
  CHECK(back.first_offset == 12345);
  CHECK(back.replid == h.replid);
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string bad = bytes;
    bad[i] = static_cast<char>(bad[i] ^ 1);
    CHECK(decode_segment_header(bad, &back) != "");
  }
}

TEST_CASE("a frame checks only with its exact payload and header") {
  std::string payload = "*1\r\n$4\r\nPING\r\n";
  FrameHeader h{format::FrameType::data, 1000, static_cast<uint32_t>(payload.size()), 0};
  unsigned char hdr[format::kFrameHeaderSize];
  encode_frame_header(h, payload, hdr);
  std::string bytes = std::string(reinterpret_cast<char*>(hdr), sizeof hdr) + payload;
  FrameHeader got;
  REQUIRE(check_frame(bytes, 0, &got));
  CHECK(got.first_offset == 1000);
  CHECK(got.length == payload.size());
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string bad = bytes;
    bad[i] = static_cast<char>(bad[i] ^ 0x10);
    CHECK_FALSE(check_frame(bad, 0, &got));
  }
  CHECK_FALSE(check_frame(bytes.substr(0, bytes.size() - 1), 0, &got));  // cut payload
}
