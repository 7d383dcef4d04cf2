#include "log/history_reset.h"

#include <vector>

#include "log/log_format.h"
#include "log/log_scanner.h"

namespace dp::log {
namespace {

std::string step_error(const char* step, const std::string& path, int rc) {
  return "log: " + std::string(step) + " " + path + " failed: " + errno_text(rc);
}

// Deletes every segment, then renames reset.tmp into place; each step synced.
std::string replace_segments(FileSystem* fs, const std::string& dir, uint64_t first_offset) {
  std::vector<std::pair<uint64_t, std::string>> old;
  if (int rc = list_segments(fs, dir, &old)) return step_error("listing", dir, rc);
  for (auto& [off, name] : old)
    if (int rc = fs->unlink(dir + "/" + name)) return step_error("unlink of", dir + "/" + name, rc);
  if (!old.empty())
    if (int rc = fs->fsync_dir(dir)) return step_error("fsync of directory", dir, rc);
  std::string tmp = dir + "/" + format::kResetTempName;
  std::string dst = dir + "/" + segment_name(first_offset);
  if (int rc = fs->rename(tmp, dst)) return step_error("rename to", dst, rc);
  if (int rc = fs->fsync_dir(dir)) return step_error("fsync of directory", dir, rc);
  return "";
}

bool ends_with(const std::string& s, const char* suffix) {
  std::string_view v(suffix);
  return s.size() >= v.size() && s.compare(s.size() - v.size(), v.size(), v) == 0;
}

}  // namespace

std::string install_history(FileSystem* fs, const std::string& dir, const SegmentHeader& header,
                            uint64_t segment_size, const std::string& spare) {
  std::string tmp = dir + "/" + format::kResetTempName;
  std::string err;
  if (!spare.empty()) {
    err = write_segment_header(fs, dir + "/" + spare, header);
    if (err.empty())
      if (int rc = fs->rename(dir + "/" + spare, tmp)) err = step_error("rename to", tmp, rc);
  } else {
    err = create_segment_file(fs, dir, format::kResetTempName, segment_size, &header);
  }
  if (!err.empty()) return err;
  if (int rc = fs->fsync_dir(dir)) return step_error("fsync of directory", dir, rc);
  return replace_segments(fs, dir, header.first_offset);
}

std::string finish_pending_reset(FileSystem* fs, const std::string& dir, std::string* note) {
  std::vector<std::string> names;
  if (int rc = fs->list_dir(dir, &names)) return step_error("listing", dir, rc);
  bool removed = false;
  for (auto& n : names) {
    if (!ends_with(n, ".tmp") || n == format::kResetTempName) continue;
    if (int rc = fs->unlink(dir + "/" + n)) return step_error("unlink of", dir + "/" + n, rc);
    removed = true;
  }
  for (auto& n : names) {
    if (n != format::kResetTempName) continue;
    std::string path = dir + "/" + n;
    std::string bytes;
    if (int rc = read_file(fs, path, &bytes)) return step_error("reading", path, rc);
    SegmentHeader h;
    if (decode_segment_header(bytes, &h).empty()) {
      *note += "completed an interrupted reset to offset " + std::to_string(h.first_offset) + "; ";
      return replace_segments(fs, dir, h.first_offset);
    }
    if (int rc = fs->unlink(path)) return step_error("unlink of", path, rc);
    *note += "dropped an unfinished reset; ";
    removed = true;
  }
  if (removed)
    if (int rc = fs->fsync_dir(dir)) return step_error("fsync of directory", dir, rc);
  return "";
}

}  // namespace dp::log
