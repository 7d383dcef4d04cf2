#include "log/log_scanner.h"

#include <algorithm>
#include <cstring>

#include "log/log_format.h"

namespace dp::log {

using namespace format;

uint64_t walk_frames(std::string_view bytes, uint64_t first_offset, uint64_t* end_offset,
                     const FrameVisitor& visit) {
  uint64_t pos = kSegmentHeaderSize;
  uint64_t end = first_offset;
  FrameHeader h;
  while (check_frame(bytes, pos, &h) && h.first_offset == end) {
    std::string_view payload = bytes.substr(pos + kFrameHeaderSize, h.length);
    if (visit) visit(h, payload);
    if (h.type == FrameType::data) end += h.length;
    pos += kFrameHeaderSize + h.length;
  }
  *end_offset = end;
  return pos;
}

bool later_group_after(std::string_view bytes, uint64_t pos) {
  const unsigned char magic[4] = {static_cast<unsigned char>(kFrameMagic & 0xFF),
                                  static_cast<unsigned char>((kFrameMagic >> 8) & 0xFF),
                                  static_cast<unsigned char>((kFrameMagic >> 16) & 0xFF),
                                  static_cast<unsigned char>(kFrameMagic >> 24)};
  size_t q = static_cast<size_t>(pos) + 1;
  while (q < bytes.size()) {
    const void* hit = memmem(bytes.data() + q, bytes.size() - q, magic, sizeof magic);
    if (hit == nullptr) return false;
    q = static_cast<size_t>(static_cast<const char*>(hit) - bytes.data());
    FrameHeader h;
    if (check_frame(bytes, q, &h)) {
      // Back to what was durable when q's group was written: damage before
      // that cannot be a torn tail.
      uint64_t back = uint64_t{h.batch_back} + h.sync_back;
      if (back <= q && q - back > pos) return true;
    }
    ++q;
  }
  return false;
}

int list_segments(FileSystem* fs, const std::string& dir,
                  std::vector<std::pair<uint64_t, std::string>>* out) {
  std::vector<std::string> names;
  if (int rc = fs->list_dir(dir, &names)) return rc;
  out->clear();
  for (auto& n : names)
    if (auto off = parse_segment_name(n)) out->emplace_back(*off, n);
  std::sort(out->begin(), out->end());
  return 0;
}

namespace {
uint64_t nonzero_after(std::string_view bytes, uint64_t pos) {
  uint64_t last = pos;
  for (uint64_t i = pos; i < bytes.size(); ++i)
    if (bytes[i] != 0) last = i + 1;
  return last - pos;
}
}  // namespace

std::string scan_log(FileSystem* fs, const std::string& dir, ScanResult* out,
                     const FrameVisitor& visit) {
  *out = ScanResult{};
  std::vector<std::pair<uint64_t, std::string>> segs;
  if (int rc = list_segments(fs, dir, &segs)) return "log: cannot list " + dir + ": " + errno_text(rc);
  for (size_t i = 0; i < segs.size(); ++i) {
    const std::string path = dir + "/" + segs[i].second;
    std::string bytes;
    if (int rc = read_file(fs, path, &bytes)) return "log: cannot read " + path + ": " + errno_text(rc);
    SegmentHeader hdr;
    std::string bad = decode_segment_header(bytes, &hdr);
    if (!bad.empty()) return "log: corrupt segment " + path + " at byte 0: " + bad;
    if (hdr.first_offset != segs[i].first)
      return "log: corrupt segment " + path + ": header names offset " +
             std::to_string(hdr.first_offset) + ", file name another";
    if (i == 0) {
      out->start_offset = out->end_offset = hdr.first_offset;
      out->replid = hdr.replid;
      out->replids.push_back(hdr.replid);
    } else if (hdr.first_offset != out->end_offset || hdr.replid != out->replid) {
      return "log: corrupt segment " + path + ": starts at offset " +
             std::to_string(hdr.first_offset) + " replid '" + hdr.replid +
             "' but the previous segment ends at " + std::to_string(out->end_offset) +
             " replid '" + out->replid + "'";
    }
    SegmentInfo info;
    info.name = segs[i].second;
    info.first_offset = hdr.first_offset;
    info.file_size = bytes.size();
    info.start_replid = hdr.replid;
    info.write_pos = walk_frames(bytes, hdr.first_offset, &info.end_offset,
                                 [&](const FrameHeader& h, std::string_view payload) {
                                   if (h.type == FrameType::replid) {
                                     out->replid.assign(payload);
                                     out->replids.emplace_back(payload);
                                   }
                                   if (visit) visit(h, payload);
                                 });
    out->end_offset = info.end_offset;
    uint64_t junk = nonzero_after(bytes, info.write_pos);
    if (junk > 0) {
      if (i + 1 < segs.size() || later_group_after(bytes, info.write_pos)) {
        return "log: corrupt segment " + path + " at byte " + std::to_string(info.write_pos) +
               " (stream offset " + std::to_string(info.end_offset) +
               "): bad frame followed by later data";
      }
      out->torn = true;
      out->torn_bytes = junk;
    }
    out->segments.push_back(std::move(info));
  }
  return "";
}

}  // namespace dp::log
