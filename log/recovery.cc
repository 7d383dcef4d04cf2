#include "log/recovery.h"

#include <algorithm>

#include "log/history_reset.h"
#include "log/manifest.h"

namespace dp::log {
namespace {

std::string zero_torn_tail(FileSystem* fs, const std::string& dir, const SegmentInfo& seg) {
  std::string path = dir + "/" + seg.name;
  int fd;
  if (int rc = fs->open(path, false, &fd)) return "log: cannot open " + path + ": " + errno_text(rc);
  int rc = write_zeros(fs, fd, seg.write_pos, seg.file_size);
  if (rc == 0) rc = fs->fdatasync(fd);
  fs->close(fd);
  if (rc != 0)
    return "log: zeroing the torn tail of " + path + " at byte " + std::to_string(seg.write_pos) +
           " failed: " + errno_text(rc);
  return "";
}

// Deletes segments whose every byte is at or below `offset`.
std::string drop_segments_below(FileSystem* fs, const std::string& dir, uint64_t offset,
                                std::vector<SegmentInfo>* segs) {
  size_t n = 0;
  while (n + 1 < segs->size() && (*segs)[n + 1].first_offset <= offset) ++n;
  for (size_t i = 0; i < n; ++i) {
    std::string path = dir + "/" + (*segs)[i].name;
    if (int rc = fs->unlink(path)) return "log: unlink of " + path + " failed: " + errno_text(rc);
  }
  if (n > 0) {
    segs->erase(segs->begin(), segs->begin() + static_cast<ptrdiff_t>(n));
    if (int rc = fs->fsync_dir(dir)) return "log: fsync of directory " + dir + " failed: " + errno_text(rc);
  }
  return "";
}

}  // namespace

std::string recover_log(FileSystem* fs, const std::string& dir, const std::string& checkpoint_dir,
                        uint64_t segment_bytes, RecoveredLog* out) {
  *out = RecoveredLog{};
  RecoveryInfo& info = out->info;
  if (int rc = fs->make_dirs(dir)) return "log: cannot create directory " + dir + ": " + errno_text(rc);
  std::string err = finish_pending_reset(fs, dir, &info.note);
  if (!err.empty()) return err;

  ScanResult scan;
  if (err = scan_log(fs, dir, &scan); !err.empty()) return err;
  if (scan.torn) {
    if (err = zero_torn_tail(fs, dir, scan.segments.back()); !err.empty()) return err;
    info.truncated_bytes = scan.torn_bytes;
    info.note += "torn tail of " + std::to_string(scan.torn_bytes) + " bytes dropped at " +
                 scan.segments.back().name + " byte " +
                 std::to_string(scan.segments.back().write_pos) + "; ";
  }
  out->segments = scan.segments;
  info.replid = scan.replid;
  info.start_offset = scan.start_offset;
  info.end_offset = scan.end_offset;

  Manifest m;
  bool found = false;
  if (!checkpoint_dir.empty()) {
    if (err = read_manifest(fs, checkpoint_dir, &m, &found); !err.empty()) return err;
  }
  if (found) {
    const uint64_t c = m.checkpoint_offset;
    bool same_history =
        std::find(scan.replids.begin(), scan.replids.end(), m.replid) != scan.replids.end();
    if (scan.segments.empty()) {
      info.replid = m.replid;
      info.start_offset = info.end_offset = c;
      info.note += "empty log starts at checkpoint " + std::to_string(c) + "; ";
    } else if (same_history && scan.start_offset <= c && c <= scan.end_offset) {
      if (err = drop_segments_below(fs, dir, c, &out->segments); !err.empty()) return err;
      info.start_offset = c;
      info.note += "log continues checkpoint " + std::to_string(c) + "; ";
    } else if (same_history && scan.start_offset > c) {
      return "log: " + dir + " starts at offset " + std::to_string(scan.start_offset) +
             " but the newest checkpoint (" + checkpoint_dir + "/MANIFEST) is at " +
             std::to_string(c) + ": stream bytes in between are missing";
    } else {
      SegmentHeader h{c, m.replid};
      if (err = install_history(fs, dir, h, segment_bytes); !err.empty()) return err;
      info.note += "log (replid '" + scan.replid + "', ending at " +
                   std::to_string(scan.end_offset) + ") superseded by checkpoint " +
                   std::to_string(c) + " of replid '" + m.replid + "'; ";
      out->segments.clear();
      SegmentInfo s;
      s.name = segment_name(c);
      s.first_offset = c;
      s.file_size = segment_bytes;
      s.write_pos = format::kSegmentHeaderSize;
      s.end_offset = c;
      s.start_replid = m.replid;
      out->segments.push_back(s);
      info.replid = m.replid;
      info.start_offset = info.end_offset = c;
    }
  }
  if (info.note.empty()) info.note = scan.segments.empty() ? "new log" : "clean";
  return "";
}

}  // namespace dp::log
