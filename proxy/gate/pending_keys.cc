#include "proxy/gate/pending_keys.h"

#include <algorithm>

namespace dp::gate {

namespace {
// The function libraries are one server-wide pseudo key (classification.h).
int key_db(int db, std::string_view key) { return key == commands::kFunctionLibrariesKey ? 0 : db; }
}  // namespace

PendingKeys::KeyMap& PendingKeys::db_keys(int db) {
  if (static_cast<size_t>(db) >= key_maps_.size()) key_maps_.resize(db + 1);
  return key_maps_[db];
}

PendingKeys::Mark& PendingKeys::db_mark(int db) {
  if (static_cast<size_t>(db) >= db_marks_.size()) db_marks_.resize(db + 1);
  Mark& m = db_marks_[db];
  if (!m.live) {
    m.live = true;
    ++dbs_live_;
  }
  return m;
}

void PendingKeys::mark_key(Token* t, int db, std::string_view key) {
  db = key_db(db, key);
  if (db < 0 || db >= kMaxDb) return mark_all(t);
  KeyMap& m = db_keys(db);
  auto it = m.find(key);
  if (it == m.end()) {
    it = m.emplace(std::string(key), Mark{}).first;
    ++keys_;
  }
  ++it->second.unresolved;
  t->keys.emplace_back(db, it->first);
}

void PendingKeys::mark_db(Token* t, int db) {
  if (db < 0 || db >= kMaxDb) return mark_all(t);
  Mark& m = db_mark(db);
  ++m.unresolved;
  t->dbs.push_back(db);
}

void PendingKeys::mark_all(Token* t) {
  if (t->all_dbs) return;
  ++all_.unresolved;
  t->all_dbs = true;
}

void PendingKeys::resolve(Token&& t, uint64_t offset) {
  for (auto& [db, key] : t.keys) {
    Mark& m = key_maps_[db].find(key)->second;
    --m.unresolved;
    if (offset > m.max_offset) m.max_offset = offset;
  }
  for (int db : t.dbs) {
    Mark& m = db_marks_[db];
    --m.unresolved;
    if (offset > m.max_offset) m.max_offset = offset;
  }
  if (t.all_dbs) {
    --all_.unresolved;
    if (offset > all_.max_offset) all_.max_offset = offset;
  }
  if (offset <= durable_) {  // already durable: settle now
    for (auto& [db, key] : t.keys) settle_key(db, key);
    for (int db : t.dbs) settle_db(db);
    return;
  }
  if (t.keys.empty() && t.dbs.empty()) return;
  resolved_.push_back(Cleanup{offset, std::move(t.keys), std::move(t.dbs)});
}

void PendingKeys::abandon(Token&& t) {
  for (auto& [db, key] : t.keys) {
    --key_maps_[db].find(key)->second.unresolved;
    settle_key(db, key);
  }
  for (int db : t.dbs) {
    --db_marks_[db].unresolved;
    settle_db(db);
  }
  if (t.all_dbs) --all_.unresolved;
}

void PendingKeys::stream_key(int db, std::string_view key, uint64_t offset) {
  if (offset <= durable_) return;
  db = key_db(db, key);
  if (db < 0 || db >= kMaxDb) return stream_all(offset);
  KeyMap& m = db_keys(db);
  auto it = m.find(key);
  if (it == m.end()) {
    it = m.emplace(std::string(key), Mark{}).first;
    ++keys_;
  }
  if (offset > it->second.max_offset) it->second.max_offset = offset;
  if (streamed_.empty() || streamed_.back().offset != offset) streamed_.push_back(Cleanup{offset, {}, {}});
  streamed_.back().keys.emplace_back(db, it->first);
}

void PendingKeys::stream_db(int db, uint64_t offset) {
  if (offset <= durable_) return;
  if (db < 0 || db >= kMaxDb) return stream_all(offset);
  Mark& m = db_mark(db);
  if (offset > m.max_offset) m.max_offset = offset;
  if (streamed_.empty() || streamed_.back().offset != offset) streamed_.push_back(Cleanup{offset, {}, {}});
  streamed_.back().dbs.push_back(db);
}

void PendingKeys::stream_all(uint64_t offset) {
  if (offset > all_.max_offset) all_.max_offset = offset;
}

bool PendingKeys::key_pending(int db, std::string_view key) const {
  db = key_db(db, key);
  if (all_.busy(durable_)) return true;
  if (db < 0 || db >= kMaxDb) return true;
  size_t d = static_cast<size_t>(db);
  if (d < db_marks_.size() && db_marks_[d].busy(durable_)) return true;
  if (d >= key_maps_.size() || key_maps_[d].empty()) return false;
  auto it = key_maps_[d].find(key);
  return it != key_maps_[d].end() && it->second.busy(durable_);
}

uint64_t PendingKeys::key_wait(int db, std::string_view key) const {
  db = key_db(db, key);
  uint64_t need = 0;
  auto add = [&](const Mark& m) {
    if (!m.busy(durable_)) return;
    need = m.unresolved > 0 ? kUnknown : std::max(need, m.max_offset);
  };
  add(all_);
  if (db < 0 || db >= kMaxDb) return need == 0 ? 0 : kUnknown;
  size_t d = static_cast<size_t>(db);
  if (need != kUnknown && d < db_marks_.size()) add(db_marks_[d]);
  if (need != kUnknown && d < key_maps_.size() && !key_maps_[d].empty()) {
    auto it = key_maps_[d].find(key);
    if (it != key_maps_[d].end()) add(it->second);
  }
  return need;
}

bool PendingKeys::db_pending(int db) const {
  if (all_.busy(durable_)) return true;
  if (db < 0 || db >= kMaxDb) return true;
  size_t d = static_cast<size_t>(db);
  return d < db_marks_.size() && db_marks_[d].busy(durable_);
}

void PendingKeys::settle_key(int db, const std::string& key) {
  KeyMap& m = key_maps_[db];
  auto it = m.find(key);
  if (it != m.end() && !it->second.busy(durable_)) {
    m.erase(it);
    --keys_;
  }
}

void PendingKeys::settle_db(int db) {
  Mark& m = db_marks_[db];
  if (m.live && !m.busy(durable_)) {
    m = Mark{};
    --dbs_live_;
  }
}

void PendingKeys::drain(std::deque<Cleanup>* q, uint64_t offset) {
  while (!q->empty() && q->front().offset <= offset) {
    Cleanup& c = q->front();
    for (auto& [db, key] : c.keys) settle_key(db, key);
    for (int db : c.dbs) settle_db(db);
    q->pop_front();
  }
}

void PendingKeys::durable(uint64_t offset) {
  if (offset <= durable_) return;
  durable_ = offset;
  drain(&resolved_, offset);
  drain(&streamed_, offset);
}

void PendingKeys::new_history(uint64_t base) {
  resolved_.clear();
  streamed_.clear();
  for (KeyMap& m : key_maps_) {
    for (auto it = m.begin(); it != m.end();) {
      if (it->second.unresolved == 0) {
        it = m.erase(it);
        --keys_;
      } else {
        it->second.max_offset = 0;
        ++it;
      }
    }
  }
  for (Mark& d : db_marks_) {
    d.max_offset = 0;
    if (d.live && d.unresolved == 0) {
      d.live = false;
      --dbs_live_;
    }
  }
  all_.max_offset = 0;
  durable_ = base;
}

}  // namespace dp::gate
