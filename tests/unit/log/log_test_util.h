// Helpers for log tests: open a log on the fake file system, wait for
// durability, read everything back, and damage files the way disks do.
#pragma once

#include <chrono>
#include <string>
#include <thread>

#include "fake_file_system.h"
#include "log/durable_log.h"
#include "log/log_format.h"
#include "unit/test_deadline.h"

namespace dp::log::test {

inline const std::string kDir = "/d";

inline LogOptions fake_options(FakeFileSystem* fs, uint64_t segment_bytes = 4096) {
  LogOptions o;
  o.dir = kDir;
  o.segment_bytes = segment_bytes;
  o.file_system = fs;
  return o;
}

inline std::unique_ptr<DurableLog> open_log(const LogOptions& o, std::string* error = nullptr) {
  std::string err;
  auto log = DurableLog::open(o, &err);
  if (error) *error = err;
  return log;
}

// Waits until durable_offset() >= want or the log failed (scaled deadline,
// unit/test_deadline.h; on giving up it prints the offset reached).
inline bool wait_durable(const DurableLog& log, uint64_t want) {
  dp::test::wait_until([&] { return log.durable_offset() >= want || log.failed(); },
                       "the log to be durable up to " + std::to_string(want),
                       dp::test::kDefaultWait, [&] {
                         return "durable_offset=" + std::to_string(log.durable_offset()) +
                                (log.failed() ? " failed: " + log.failure_reason() : "");
                       });
  return log.durable_offset() >= want;
}

inline std::string read_all(FileSystem* fs, uint64_t from, uint64_t to, std::string* error) {
  std::string out;
  *error = read_range(fs, kDir, from, to, [&](std::string_view c) {
    out.append(c);
    return true;
  });
  return out;
}

inline std::string seg_path(uint64_t first_offset) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s/%020llu.seg", kDir.c_str(),
                static_cast<unsigned long long>(first_offset));
  return buf;
}

// Position of the n-th frame (0-based) of a segment's bytes.
inline size_t frame_pos(const std::string& seg, int n) {
  size_t pos = format::kSegmentHeaderSize;
  for (int i = 0; i < n; ++i)
    pos += format::kFrameHeaderSize +
           format::get32(reinterpret_cast<const unsigned char*>(seg.data()) + pos + format::kFrameLength);
  return pos;
}

// --- damage, named for what a disk does ---
inline void flip_byte(FakeFileSystem* fs, const std::string& path, size_t pos) {
  std::string d = fs->contents(path);
  d[pos] = static_cast<char>(d[pos] ^ 0x5A);
  fs->set_contents(path, d);
}
inline void cut_file(FakeFileSystem* fs, const std::string& path, size_t size) {
  std::string d = fs->contents(path);
  d.resize(size);
  fs->set_contents(path, d);
}
// Recomputes a frame's crc after a deliberate edit, so only the semantic
// check (offset chain) can catch it.
void fix_frame_checksum(FakeFileSystem* fs, const std::string& path, size_t frame_pos);

}  // namespace dp::log::test
