// Opening a log directory: finishes an interrupted reset, scans segments,
// zeroes a torn tail, and reconciles the log with the checkpoint MANIFEST.
// This file is the one place where the log and the checkpoints meet
// (log/FORMAT.md "Recovery rules" 5).  Runs before the writer starts; one
// thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "log/durable_log.h"
#include "log/file_system.h"
#include "log/log_scanner.h"

namespace dp::log {

struct RecoveredLog {
  RecoveryInfo info;
  std::vector<SegmentInfo> segments;  // what remains on disk, ascending
};

// checkpoint_dir "" = no checkpoint glue.  Returns "" or an error naming the
// file and byte offset (corruption) or the failed operation.
std::string recover_log(FileSystem* fs, const std::string& dir, const std::string& checkpoint_dir,
                        uint64_t segment_bytes, RecoveredLog* out);

}  // namespace dp::log
