// Reads the replication stream as commands, to keep the pending-key table
// exact for writes that did not come through the proxy (DESIGN.md §4):
// direct writes, expiry and eviction UNLINKs, the real keys of scripts.
// Each write's keys are marked at the offset where its effect is complete:
// the end of the command, or of the EXEC that closes its MULTI.  Also spots
// REPLCONF GETACK, which the replica link must answer at once.
//
// Loop thread only.  Bytes are fed in stream order with their offsets.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "proxy/base/byte_buffer.h"
#include "proxy/commands/command_table.h"
#include "proxy/gate/pending_keys.h"
#include "proxy/resp/request_parser.h"

namespace dp {

class StreamTracker {
 public:
  StreamTracker(gate::PendingKeys* pending, std::function<void()> on_getack);

  void set_table(std::shared_ptr<const commands::CommandTable> table) { table_ = std::move(table); }
  // A new history (FULLRESYNC) or a gap: forget partial state; the stream
  // restarts in db 0 right after offset `offset`.
  void reset(uint64_t offset);
  // `bytes` are stream bytes first_offset .. first_offset+size-1.
  void feed(std::string_view bytes, uint64_t first_offset);

  uint64_t commands_seen() const { return commands_; }
  bool broken() const { return broken_; }

 private:
  void on_command(const resp::Request& req, uint64_t end_offset);
  void mark(int db, uint64_t offset);

  gate::PendingKeys* pending_;
  std::function<void()> on_getack_;
  std::shared_ptr<const commands::CommandTable> table_;
  resp::RequestParser parser_;
  resp::Request req_;
  commands::Classification cls_;
  ByteBuffer partial_;
  uint64_t partial_start_ = 0;  // offset of partial_'s first byte
  int db_ = 0;
  bool in_multi_ = false;
  // Marks queued inside MULTI, applied at EXEC's end offset.
  std::vector<std::pair<int, std::string>> multi_keys_;
  std::vector<int> multi_dbs_;
  bool multi_all_ = false;
  uint64_t commands_ = 0;
  bool broken_ = false;
};

}  // namespace dp
