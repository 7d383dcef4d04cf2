// Segment files: names, the 80-byte header, frame encoding and checking,
// and creation of a zero-filled segment.  Pure helpers over a FileSystem;
// no state, any thread.  Layout: log/FORMAT.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "log/file_system.h"
#include "log/log_format.h"

namespace dp::log {

std::string segment_name(uint64_t first_offset);  // "00000000000000001000.seg"
std::optional<uint64_t> parse_segment_name(std::string_view name);

struct SegmentHeader {
  uint64_t first_offset = 0;
  std::string replid;
};
void encode_segment_header(const SegmentHeader& h, unsigned char out[format::kSegmentHeaderSize]);
// Returns "" when valid, else what is wrong.
std::string decode_segment_header(std::string_view bytes, SegmentHeader* h);

struct FrameHeader {
  format::FrameType type = format::FrameType::data;
  uint64_t first_offset = 0;
  uint32_t length = 0;
  uint32_t batch_back = 0;
  uint32_t sync_back = 0;  // < 2^24
};
// Fills the 28-byte header including the crc of header fields + payload.
void encode_frame_header(const FrameHeader& h, std::string_view payload,
                         unsigned char out[format::kFrameHeaderSize]);
// Checks the frame at bytes[pos]: magic, type, length within bytes, crc.
// Does not check the offset chain.
bool check_frame(std::string_view bytes, size_t pos, FrameHeader* h);

// Creates `dir/name` (replacing it) at `size` bytes, zero-filled by real
// writes, with the header written and everything fdatasynced.  Does not
// fsync the directory.  Returns "" or an error naming the file.
std::string create_segment_file(FileSystem* fs, const std::string& dir, const std::string& name,
                                uint64_t size, const SegmentHeader* header);
// Writes the header into an existing zero-filled file and fdatasyncs.
std::string write_segment_header(FileSystem* fs, const std::string& path,
                                 const SegmentHeader& header);

}  // namespace dp::log
