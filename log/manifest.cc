#include "log/manifest.h"

#include <cstdio>
#include <sstream>

#include "log/crc32c.h"

namespace dp::log {
namespace {
constexpr const char* kName = "MANIFEST";
constexpr const char* kTempName = "MANIFEST.tmp";
}  // namespace

std::string read_manifest(FileSystem* fs, const std::string& checkpoint_dir, Manifest* m,
                          bool* found) {
  std::string path = checkpoint_dir + "/" + kName;
  std::string text;
  *found = false;
  if (int rc = read_file(fs, path, &text)) {
    if (rc == ENOENT) return "";
    return "checkpoint: cannot read " + path + ": " + errno_text(rc);
  }
  size_t crc_at = text.rfind("crc32c ");
  if (crc_at == std::string::npos)
    return "checkpoint: " + path + " has no crc32c line";
  char want[16];
  std::snprintf(want, sizeof want, "%08x", crc32c(text.data(), crc_at));
  if (text.compare(crc_at + 7, 8, want) != 0)
    return "checkpoint: " + path + " checksum mismatch at byte " + std::to_string(crc_at);
  std::istringstream in(text.substr(0, crc_at));
  std::string key, value;
  int seen = 0;
  *m = Manifest{};
  while (in >> key >> value) {
    try {
      if (key == "replid") m->replid = value, seen |= 1;
      else if (key == "checkpoint_offset") m->checkpoint_offset = std::stoull(value), seen |= 2;
      else if (key == "log_start") m->log_start = std::stoull(value), seen |= 4;
      else if (key == "rdb") m->rdb_file = value, seen |= 8;
    } catch (const std::exception&) {
      return "checkpoint: " + path + ": bad value for " + key;
    }
  }
  if (seen != 15) return "checkpoint: " + path + " lacks a field";
  *found = true;
  return "";
}

std::string write_manifest(FileSystem* fs, const std::string& checkpoint_dir, const Manifest& m) {
  std::string text = "replid " + m.replid + "\ncheckpoint_offset " +
                     std::to_string(m.checkpoint_offset) + "\nlog_start " +
                     std::to_string(m.log_start) + "\nrdb " + m.rdb_file + "\n";
  char crc[32];
  std::snprintf(crc, sizeof crc, "crc32c %08x\n", crc32c(text.data(), text.size()));
  text += crc;
  std::string tmp = checkpoint_dir + "/" + kTempName;
  std::string dst = checkpoint_dir + "/" + kName;
  fs->unlink(tmp);
  int fd;
  if (int rc = fs->open(tmp, true, &fd)) return "checkpoint: cannot create " + tmp + ": " + errno_text(rc);
  struct iovec iov{text.data(), text.size()};
  int rc = fs->pwritev(fd, &iov, 1, 0);
  if (rc == 0) rc = fs->fdatasync(fd);
  fs->close(fd);
  if (rc != 0) return "checkpoint: writing " + tmp + " failed: " + errno_text(rc);
  if ((rc = fs->rename(tmp, dst))) return "checkpoint: rename to " + dst + " failed: " + errno_text(rc);
  if ((rc = fs->fsync_dir(checkpoint_dir)))
    return "checkpoint: fsync of directory " + checkpoint_dir + " failed: " + errno_text(rc);
  return "";
}

}  // namespace dp::log
