// Checkpoints: opaque RDB files at a replication offset, plus a MANIFEST
// naming the newest complete one.  See log/FORMAT.md.
//
// Layout under <dir>: checkpoints/<20-digit offset>.rdb, checkpoints/MANIFEST.
// A checkpoint is written to a temp file as its bytes arrive, then fsync,
// rename, fsync dir, then the MANIFEST is replaced the same way.  The
// previous checkpoint is kept until the new one is complete.
//
// After commit() the caller deletes log segments wholly below the new
// checkpoint with DurableLog::drop_below(offset); recovery does the same
// from the MANIFEST if the process died in between.
//
// Threads: the store and its writers are used from one thread at a time,
// except latest(), which any thread may call at any time (the proxy's loop
// reads it for /status while a checkpoint commits on libuv's pool).
// A writer must not outlive its store.
// CheckpointWriter::write() does buffered writes only; commit() fsyncs and
// may take long: call it off the event loop (libuv pool) or accept the stall.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace dp::log {

class FileSystem;  // log/file_system.h

struct CheckpointInfo {
  std::string replid;
  uint64_t offset = 0;        // state after stream byte `offset`
  std::string path;           // the .rdb file
  uint64_t size = 0;
};

class CheckpointWriter {
 public:
  virtual ~CheckpointWriter() = default;  // aborts (removes temp) unless committed
  virtual bool write(std::string_view bytes, std::string* error) = 0;
  virtual bool commit(std::string* error) = 0;  // fsync, rename, fsync dir, MANIFEST
};

class CheckpointStore {
 public:
  static std::unique_ptr<CheckpointStore> open(const std::string& dir, std::string* error);
  // Same over another file system (tests); fs must outlive the store.
  static std::unique_ptr<CheckpointStore> open(const std::string& dir, FileSystem* fs,
                                               std::string* error);
  virtual ~CheckpointStore() = default;
  virtual std::optional<CheckpointInfo> latest() const = 0;
  virtual std::unique_ptr<CheckpointWriter> begin(const std::string& replid, uint64_t offset,
                                                  std::string* error) = 0;
  // Removes checkpoints older than latest() (keeps only the newest).
  virtual void prune() = 0;
};

}  // namespace dp::log
