// The durable log: an ordered byte stream addressed by replication offsets,
// made durable by group commit: committer threads (LogOptions::fsync_overlap)
// take turns writing a batch, and the next one may start its fdatasync while
// the previous one's is in flight.  Knows nothing of clients, RESP or libuv.
// See log/FORMAT.md.
//
// Offsets follow the replication protocol: a log "ends at" offset E when the
// last byte it holds is byte number E of the upstream's stream.  A
// FULLRESYNC at offset C means the next stream byte is byte C+1, so after
// reset(replid, C) the log ends at C and holds nothing past it.
//
// Threads: open() on any thread before use.  append(), set_replid(),
// reset() and the accessors are called from ONE producer thread (the proxy's
// loop thread).  A committer thread calls the on_durable callback after every
// group commit that moved durable_offset(), and on failure; it must be cheap
// and thread-safe, also against itself: two committers may call it at once
// (the proxy wires it to uv_async_send).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace dp::log {

class FileSystem;  // log/file_system.h

struct LogOptions {
  std::string dir;                       // created if missing
  uint64_t segment_bytes = 64ull << 20;  // preallocated + zero-filled size of one segment
  uint32_t commit_delay_us = 0;          // optional wait for a bigger batch
  // Group commits whose fdatasync may be in flight at once (>= 1; 1 = the
  // next group waits for the previous fdatasync).  One committer thread
  // each.
  uint32_t fsync_overlap = 2;
  std::function<void()> on_durable;      // see above; may be empty
  // Committer thread, after each successful group commit: nanoseconds of its
  // write + fdatasync and the stream bytes it made durable.  Must be cheap
  // and thread-safe, two committers may call it at once (metrics); may be
  // empty.
  std::function<void(uint64_t commit_ns, uint64_t stream_bytes)> on_commit;
  // Where CheckpointStore::open() was pointed; its MANIFEST decides where
  // the log starts after recovery (FORMAT.md rule 5).  "" = dir.
  std::string checkpoint_dir;
  FileSystem* file_system = nullptr;     // tests: fault injection; nullptr = POSIX
};

struct RecoveryInfo {
  std::string replid;         // "" when the log is empty/new
  uint64_t start_offset = 0;  // first byte held is start_offset+1
  uint64_t end_offset = 0;    // last byte held (== start when empty)
  uint64_t truncated_bytes = 0;  // torn tail dropped
  std::string note;           // human text: what recovery found
};

class DurableLog {
 public:
  // Opens dir, recovers (torn tail truncated; corruption before good frames
  // = error naming file and byte offset), starts the committer threads.
  // Returns nullptr and sets *error on failure.
  static std::unique_ptr<DurableLog> open(const LogOptions& opts, std::string* error);
  virtual ~DurableLog() = default;  // stops the committers after a final fsync

  virtual const RecoveryInfo& recovery() const = 0;

  // Queues stream bytes that follow end_offset() (no copy is retained of the
  // caller's buffer after return).  Never blocks on disk.
  virtual void append(std::string_view bytes) = 0;
  // Starts a new history: everything held is superseded; the log now ends
  // at `offset` under `replid` (after a FULLRESYNC whose RDB is checkpoint
  // `offset`; call it only once that checkpoint is committed, as
  // log/history_switch.h does, or a crash leaves no base for the log).  Old segments are deleted once durable.  durable_offset()
  // drops to min(durable, offset) at once and reaches `offset` when the new
  // history is on disk: it is monotonic only within one history.
  virtual void reset(const std::string& replid, uint64_t offset) = 0;
  // Records a replid change at end_offset() (+CONTINUE <new replid>, or the
  // history switch after a restore); offsets continue.
  virtual void set_replid(const std::string& replid) = 0;

  virtual std::string replid() const = 0;
  virtual uint64_t start_offset() const = 0;
  virtual uint64_t end_offset() const = 0;      // appended (queued) end
  // Fsynced end; any thread.  Only what a completed fdatasync covered: the
  // end written before it started, the highest of those that completed.
  virtual uint64_t durable_offset() const = 0;
  virtual uint64_t unsynced_bytes() const = 0;  // end - durable

  // Poison: once a write or fsync fails the log never reports progress
  // again.  failed() is any-thread; failure_reason() names file + errno.
  virtual bool failed() const = 0;
  virtual std::string failure_reason() const = 0;

  // Deletes segments wholly at or below `offset` (after a newer checkpoint).
  virtual void drop_below(uint64_t offset) = 0;

  struct Stats {
    uint64_t fsyncs = 0, bytes_written = 0, batches = 0;
    uint64_t last_fsync_ns = 0;
  };
  virtual Stats stats() const = 0;  // any thread
};

// Reads durable bytes [from+1 .. end] for restore, in chunks, from the log
// files on disk.  Safe to use while the writer runs (reads only what was
// durable when called).  Returns "" or an error naming file and offset.
// A sink returning false stops the read early (not an error).
std::string read_range(const std::string& dir, uint64_t from, uint64_t to,
                       const std::function<bool(std::string_view chunk)>& sink);
std::string read_range(FileSystem* fs, const std::string& dir, uint64_t from, uint64_t to,
                       const std::function<bool(std::string_view chunk)>& sink);

}  // namespace dp::log
