#include "proxy/gate/durability_gate.h"

#include <utility>

namespace dp::gate {

DurabilityGate::DurabilityGate(ProbeFn send_probe, ClientLookup lookup)
    : send_probe_(std::move(send_probe)), lookup_(std::move(lookup)) {
  open_.id = next_id_;
}

void DurabilityGate::cover(uint64_t session_id, Token* token, uint64_t now_ms) {
  if (open_.sessions.empty() && open_.tokens.empty()) open_.created_ms = now_ms;
  // Sessions arrive in runs (a pipeline's replies), so checking the last one
  // removes nearly all duplicates; the few left cost one extra flush each.
  if (session_id != 0 && (open_.sessions.empty() || last_cover_session_ != session_id)) {
    open_.sessions.push_back(session_id);
    last_cover_session_ = session_id;
  }
  if (token && !token->empty()) open_.tokens.push_back(std::move(*token));
  if (token) *token = Token{};
}

uint64_t DurabilityGate::cover_through(uint64_t session_id, uint64_t offset) {
  // Answered batches form a prefix of batches_ (answers arrive in order;
  // a re-sent probe may leave a gap, which only makes this answer later)
  // with non-decreasing offsets: binary search that prefix.
  size_t lo = 0, hi = batches_.size();
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const Batch& b = batches_[mid];
    if (b.answered && b.offset < offset) lo = mid + 1;
    else hi = mid;
  }
  if (lo == batches_.size() || !batches_[lo].answered || batches_[lo].id <= failed_through_) return 0;
  Batch& b = batches_[lo];
  if (b.sessions.empty() || b.sessions.back() != session_id) b.sessions.push_back(session_id);
  return b.id;
}

void DurabilityGate::flush() {
  if (!batch_open()) return;
  Batch b = std::move(open_);
  open_ = Batch{};
  open_.id = ++next_id_;
  last_cover_session_ = 0;
  uint64_t id = b.id;
  batches_.push_back(std::move(b));
  ++probes_sent_;
  send_probe_(id);
}

uint64_t DurabilityGate::cover_at(uint64_t session_id, Token* token, uint64_t offset, uint64_t now_ms) {
  // Answered offsets stay non-decreasing (cover_through's search, and the
  // pending table's cleanup order): a ROLE of another connection may have
  // answered higher already.  Waiting for a higher offset is always safe.
  const uint64_t at = offset < last_offset_ ? last_offset_ : offset;
  if (token) {
    if (!token->empty()) pending_.resolve(std::move(*token), at);
    *token = Token{};
  }
  // Join the newest batch if it is answered at or above the offset and
  // was made this loop turn (an older one may fail by its age before this
  // reply's hold_timeout).
  if (!batches_.empty()) {
    Batch& back = batches_.back();
    if (back.answered && back.offset >= offset && back.created_ms == now_ms && back.id > failed_through_) {
      if (back.sessions.empty() || back.sessions.back() != session_id) back.sessions.push_back(session_id);
      return back.id;
    }
  }
  // Ids are the release order: what is in the open batch (offsets unknown,
  // its probe not sent) goes first.
  if (batch_open()) flush();
  Batch b;
  b.id = next_id_;
  b.created_ms = now_ms;
  b.answered = true;
  b.offset = at;
  last_offset_ = at;
  open_.id = ++next_id_;
  last_cover_session_ = 0;
  ++inline_batches_;
  if (batches_.empty() && b.offset <= durable_) {
    released_through_ = b.id;  // nothing waits before it: released already
    return b.id;
  }
  b.sessions.push_back(session_id);
  batches_.push_back(std::move(b));
  return batches_.back().id;
}

void DurabilityGate::probe_answered(uint64_t probe_id, uint64_t offset) {
  for (Batch& b : batches_) {
    if (b.id != probe_id) continue;
    if (b.answered) return;
    b.answered = true;
    // Answers are monotonic; a re-sent probe after a reconnect may answer
    // out of band, so keep the schedule monotonic explicitly.
    b.offset = offset < last_offset_ ? last_offset_ : offset;
    last_offset_ = b.offset;
    for (Token& t : b.tokens) pending_.resolve(std::move(t), b.offset);
    b.tokens.clear();
    break;
  }
  release_ready();
}

std::vector<uint64_t> DurabilityGate::unanswered_probes() const {
  std::vector<uint64_t> ids;
  for (const Batch& b : batches_)
    if (!b.answered) ids.push_back(b.id);
  return ids;
}

void DurabilityGate::durable(uint64_t offset) {
  if (offset <= durable_) return;
  durable_ = offset;
  pending_.durable(offset);
  release_ready();
}

void DurabilityGate::release_ready() {
  std::vector<uint64_t> touched;
  while (!batches_.empty() && batches_.front().answered && batches_.front().offset <= durable_) {
    Batch& b = batches_.front();
    released_through_ = b.id;
    for (uint64_t s : b.sessions) touched.push_back(s);
    batches_.pop_front();
  }
  for (uint64_t s : touched)
    if (GateClient* c = lookup_(s)) c->on_release();
}

void DurabilityGate::expire(uint64_t now_ms, uint64_t timeout_ms, const std::string& reason, bool all) {
  std::vector<uint64_t> touched;
  uint64_t through = failed_through_;
  for (const Batch& b : batches_) {
    if (!all && now_ms - b.created_ms < timeout_ms) break;
    if (b.id <= failed_through_) continue;
    through = b.id;
    touched.insert(touched.end(), b.sessions.begin(), b.sessions.end());
  }
  if (all && batch_open()) {
    // Nothing may be released from the open batch either: close it unsent.
    flush();
    through = batches_.back().id;
    touched.insert(touched.end(), batches_.back().sessions.begin(), batches_.back().sessions.end());
  }
  fail_through(through, touched, reason);
}

void DurabilityGate::fail_answered(const std::string& reason) {
  std::vector<uint64_t> touched;
  uint64_t through = failed_through_;
  for (const Batch& b : batches_) {  // probes are answered in order: a prefix
    if (b.id <= failed_through_) continue;
    if (!b.answered) break;
    through = b.id;
    touched.insert(touched.end(), b.sessions.begin(), b.sessions.end());
  }
  fail_through(through, touched, reason);
  // The log failed for good: failed batches will never be released, so they
  // go (otherwise every later batch would stay behind them until restart).
  while (!batches_.empty() && batches_.front().id <= failed_through_) batches_.pop_front();
}

void DurabilityGate::new_history(uint64_t base, const std::string& reason) {
  expire(0, 0, reason, /*all=*/true);
  batches_.clear();  // all failed: nothing will release them
  durable_ = base;
  last_offset_ = 0;
  pending_.new_history(base);
}

void DurabilityGate::fail_through(uint64_t through, const std::vector<uint64_t>& touched,
                                  const std::string& reason) {
  if (through == failed_through_) return;
  failed_through_ = through;
  fail_reason_ = reason;
  for (uint64_t s : touched)
    if (GateClient* c = lookup_(s)) c->on_fail(reason);
}

uint64_t DurabilityGate::oldest_wait_ms(uint64_t now_ms) const {
  if (batches_.empty()) return 0;
  return now_ms - batches_.front().created_ms;
}

}  // namespace dp::gate
