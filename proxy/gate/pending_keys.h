// The pending-key table: which (db, key) have writes that are not durable
// yet, so a read of them must wait (DESIGN.md §1 rule 2).
//
// Two sources mark keys:
//  - writes forwarded through the proxy: marked when forwarded, in a Token,
//    with no offset yet ("unresolved"); resolve() gives them the offset of
//    the probe that covered their reply;
//  - commands seen in the replication stream (writes that did not come
//    through the proxy, expiry, script effects): marked at their offset.
// A key is pending while it has unresolved marks or a mark above the durable
// offset.  A db-wide or all-dbs mark makes every key of that db (or of every
// db) pending.  commands::kFunctionLibrariesKey is server-wide: named in any
// db, it is kept (and looked up) in db 0.  Cleanup work is proportional to what becomes durable.
//
// Loop thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "proxy/commands/classification.h"

namespace dp::gate {

// Marks of one forwarded write (or one transaction) not yet resolved.
struct Token {
  std::vector<std::pair<int, std::string>> keys;
  std::vector<int> dbs;
  bool all_dbs = false;
  bool empty() const { return keys.empty() && dbs.empty() && !all_dbs; }
};

class PendingKeys {
 public:
  static constexpr int kMaxDb = 1 << 16;  // larger db numbers are treated as all-dbs

  // Forwarded writes -----------------------------------------------------
  void mark_key(Token* t, int db, std::string_view key);
  void mark_db(Token* t, int db);
  void mark_all(Token* t);
  // The write executed at or below `offset`.
  void resolve(Token&& t, uint64_t offset);
  // The write never executed (DISCARD, dropped session before forwarding).
  void abandon(Token&& t);

  // Stream-seen writes, at their offset (monotonic per call order).
  void stream_key(int db, std::string_view key, uint64_t offset);
  void stream_db(int db, uint64_t offset);
  void stream_all(uint64_t offset);

  bool key_pending(int db, std::string_view key) const;
  // What a read of (db, key) must wait for: 0 nothing; kUnknown a write
  // whose offset is not known yet (wait for a probe sent after the reply);
  // otherwise the offset the log must reach (only the writes pending now,
  // never later ones).
  static constexpr uint64_t kUnknown = ~uint64_t{0};
  uint64_t key_wait(int db, std::string_view key) const;
  bool db_pending(int db) const;  // db-wide or all-dbs mark only

  // The fsynced offset moved: forget marks at or below it.
  void durable(uint64_t offset);
  // The log now follows another history whose base `base` is durable: the
  // offsets of every settled mark belonged to the old one, so they are
  // forgotten; marks of writes still in flight stay (their probes answer in
  // the new history).
  void new_history(uint64_t base);
  uint64_t durable_offset() const { return durable_; }

  // Nothing pending anywhere: reads need no lookup.
  bool empty() const { return keys_ == 0 && dbs_live_ == 0 && !all_.busy(durable_); }
  size_t key_count() const { return keys_; }

 private:
  struct Mark {
    uint32_t unresolved = 0;
    uint64_t max_offset = 0;
    bool live = false;  // db marks: counted in dbs_live_
    bool busy(uint64_t durable) const { return unresolved > 0 || max_offset > durable; }
  };
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using KeyMap = std::unordered_map<std::string, Mark, Hash, std::equal_to<>>;
  struct Cleanup {
    uint64_t offset;
    std::vector<std::pair<int, std::string>> keys;
    std::vector<int> dbs;
  };

  KeyMap& db_keys(int db);
  Mark& db_mark(int db);  // marks it live
  void settle_key(int db, const std::string& key);
  void settle_db(int db);
  void drain(std::deque<Cleanup>* q, uint64_t offset);

  std::vector<KeyMap> key_maps_;   // by db
  std::vector<Mark> db_marks_;     // by db
  Mark all_;
  size_t keys_ = 0;                // entries across key_maps_
  size_t dbs_live_ = 0;            // db_marks_ entries with live set
  uint64_t durable_ = 0;
  std::deque<Cleanup> resolved_;   // by probe offset (monotonic)
  std::deque<Cleanup> streamed_;   // by stream offset (monotonic)
};

}  // namespace dp::gate
