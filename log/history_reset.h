// Installs a new history (reset to replid R at offset C) so that a crash at
// any step leaves either the old history or the new one, never a mix:
// reset.tmp (full, zero-filled, header) -> fdatasync -> fsync dir -> delete
// old segments -> fsync dir -> rename to <C>.seg -> fsync dir.
// finish_pending_reset() is recovery's half (FORMAT.md rule 1).
// Called by a committer thread (with none other in flight) or by recovery;
// never concurrently on one dir.
#pragma once

#include <cstdint>
#include <string>

#include "log/file_system.h"
#include "log/segment.h"

namespace dp::log {

// Returns "" or an error naming the step and file.
// When `spare` names a zero-filled file in dir of at least segment_size
// bytes, it is used instead of zero-filling a new one.
std::string install_history(FileSystem* fs, const std::string& dir, const SegmentHeader& header,
                            uint64_t segment_size, const std::string& spare = "");

// If reset.tmp exists: completes the reset when its header is valid, else
// removes it.  Also removes other *.tmp leftovers.  *note gets what it did.
std::string finish_pending_reset(FileSystem* fs, const std::string& dir, std::string* note);

}  // namespace dp::log
