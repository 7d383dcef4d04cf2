// Adopting a new history: a full resync of the main replica link
// (+FULLRESYNC <R> <C> and its RDB).  The log takes the new history only
// together with its durable base checkpoint, and drops the old one only
// after that, so a crash at any step finds either the old history complete
// (its checkpoint + its log) or the new one complete (checkpoint C + a log
// that starts at C).  See log/FORMAT.md "History switch".
//
//   begin()   RDB bytes go to checkpoints/<C>.rdb.tmp as they arrive;
//   write()   the MANIFEST and the log are untouched: the old history stands
//   commit()  1. fdatasync the RDB, rename to its .rdb name, fsync the dir
//             2. replace the MANIFEST (temp, fsync, rename, fsync dir):
//                THE SWITCH.  From here recovery resets the log to (R, C).
//             3. DurableLog::reset(R, C): queued; the writer deletes the old
//                segments and reports C durable when the new one is on disk
//             4. prune older checkpoint files
//
// Until commit() returned true the caller must acknowledge nothing of the
// new history; a failed or abandoned switch (destroyed before commit)
// leaves the old history as it was.
//
// Threads: the caller's (the proxy's loop); commit() fsyncs and may stall.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "log/checkpoint_store.h"
#include "log/durable_log.h"

namespace dp::log {

class HistorySwitch {
 public:
  // nullptr and *error when the checkpoint temp file cannot be created.
  static std::unique_ptr<HistorySwitch> begin(CheckpointStore* store, DurableLog* log,
                                              const std::string& replid, uint64_t offset,
                                              std::string* error);
  bool write(std::string_view rdb_bytes, std::string* error);
  // Steps 1-4.  False with *error naming the step and file: the MANIFEST
  // may or may not name the new checkpoint (a failed fsync after its
  // rename), but the log was not reset; the caller treats the new history
  // as not adopted.
  bool commit(std::string* error);

  const std::string& replid() const { return replid_; }
  uint64_t offset() const { return offset_; }
  uint64_t rdb_bytes() const { return bytes_; }

 private:
  HistorySwitch() = default;
  CheckpointStore* store_ = nullptr;
  DurableLog* log_ = nullptr;
  std::unique_ptr<CheckpointWriter> writer_;
  std::string replid_;
  uint64_t offset_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace dp::log
