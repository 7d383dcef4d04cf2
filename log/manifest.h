// The checkpoint MANIFEST: which checkpoint is the newest complete one.
// Text, one "key value" per line, last line "crc32c <hex>" over the lines
// before it.  Replaced atomically (temp, fsync, rename, fsync dir).
// Stateless helpers; any thread.
#pragma once

#include <cstdint>
#include <string>

#include "log/file_system.h"

namespace dp::log {

struct Manifest {
  std::string replid;
  uint64_t checkpoint_offset = 0;
  uint64_t log_start = 0;   // where restore starts reading the log (== checkpoint_offset)
  std::string rdb_file;     // name under checkpoints/
};

// Returns "" and *found=false when there is no MANIFEST; an error naming the
// file when it exists but cannot be read or parsed.
std::string read_manifest(FileSystem* fs, const std::string& checkpoint_dir, Manifest* m,
                          bool* found);
std::string write_manifest(FileSystem* fs, const std::string& checkpoint_dir, const Manifest& m);

}  // namespace dp::log
