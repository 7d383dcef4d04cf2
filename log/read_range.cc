// read_range: stream bytes (from, to] out of the segment files, for restore.
#include <algorithm>

#include "log/durable_log.h"
#include "log/file_system.h"
#include "log/log_scanner.h"

namespace dp::log {

std::string read_range(FileSystem* fs, const std::string& dir, uint64_t from, uint64_t to,
                       const std::function<bool(std::string_view chunk)>& sink) {
  std::vector<std::pair<uint64_t, std::string>> segs;
  if (int rc = list_segments(fs, dir, &segs)) return "log: cannot list " + dir + ": " + errno_text(rc);
  uint64_t pos = from;  // bytes up to pos have been delivered
  bool stopped = false;
  for (size_t i = 0; i < segs.size() && pos < to && !stopped; ++i) {
    if (i + 1 < segs.size() && segs[i + 1].first <= pos) continue;  // wholly below
    const std::string path = dir + "/" + segs[i].second;
    if (segs[i].first > pos)
      return "log: " + path + " starts at offset " + std::to_string(segs[i].first) +
             " but offset " + std::to_string(pos + 1) + " was asked for";
    std::string bytes;
    if (int rc = read_file(fs, path, &bytes)) return "log: cannot read " + path + ": " + errno_text(rc);
    uint64_t end = 0;
    walk_frames(bytes, segs[i].first, &end, [&](const FrameHeader& h, std::string_view payload) {
      if (stopped || h.type != format::FrameType::data) return;
      uint64_t lo = h.first_offset, hi = h.first_offset + h.length;  // bytes (lo, hi]
      if (hi <= pos || lo >= to) return;
      uint64_t a = std::max(lo, pos), b = std::min(hi, to);
      if (!sink(payload.substr(a - lo, b - a))) stopped = true;
      pos = b;
    });
  }
  if (!stopped && pos < to)
    return "log: " + dir + " holds stream bytes only up to offset " + std::to_string(pos) +
           ", asked for up to " + std::to_string(to);
  return "";
}

std::string read_range(const std::string& dir, uint64_t from, uint64_t to,
                       const std::function<bool(std::string_view chunk)>& sink) {
  return read_range(posix_file_system(), dir, from, to, sink);
}

}  // namespace dp::log
