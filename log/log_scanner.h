// Reads segment files and classifies what it finds: good frames, clean end,
// torn tail, corruption (rules: log/FORMAT.md "Recovery rules" 2-4).  Only
// reads; fixing a torn tail is the caller's job (log/recovery.cc).
// Stateless; any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "log/file_system.h"
#include "log/segment.h"

namespace dp::log {

struct SegmentInfo {
  std::string name;
  uint64_t first_offset = 0;
  uint64_t file_size = 0;
  uint64_t write_pos = 0;   // byte position just past the last good frame
  uint64_t end_offset = 0;  // stream end after the last good frame
  std::string start_replid;
};

struct ScanResult {
  std::vector<SegmentInfo> segments;  // ascending
  uint64_t start_offset = 0, end_offset = 0;
  std::string replid;                 // in effect at end_offset
  std::vector<std::string> replids;   // every replid of this history, oldest first
  bool torn = false;                  // last segment has damage past write_pos
  uint64_t torn_bytes = 0;            // non-zero bytes past write_pos
};

// Called for each good frame in order; payload views the segment bytes.
using FrameVisitor = std::function<void(const FrameHeader&, std::string_view payload)>;

// Walks good frames of one segment's bytes from the header on, checking the
// offset chain from `first_offset`.  Returns the position of the first byte
// that is not a good frame; *end_offset gets the stream end there.
uint64_t walk_frames(std::string_view bytes, uint64_t first_offset, uint64_t* end_offset,
                     const FrameVisitor& visit);

// True when a frame after `pos` belongs to a group commit written after pos
// was durable (its group start minus its sync back is past pos): proof
// that damage at pos is not a torn tail.
bool later_group_after(std::string_view bytes, uint64_t pos);

// Lists and checks every segment of dir.  Returns "" or an error naming the
// file and byte offset of the corruption.
std::string scan_log(FileSystem* fs, const std::string& dir, ScanResult* out,
                     const FrameVisitor& visit = nullptr);

// Segment file names of dir, ascending by first offset.
int list_segments(FileSystem* fs, const std::string& dir,
                  std::vector<std::pair<uint64_t, std::string>>* out);

}  // namespace dp::log
