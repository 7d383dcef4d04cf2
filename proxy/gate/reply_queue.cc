#include "proxy/gate/reply_queue.h"

namespace dp::gate {

void ReplyQueue::push(std::string_view bytes, Entry e) {
  e.len = static_cast<uint32_t>(bytes.size());
  buf_.append(bytes);
  bytes_ += bytes.size();
  entries_.push_back(e);
}

ReplyQueue::State ReplyQueue::front_state(uint64_t released_through, uint64_t failed_through) const {
  if (entries_.empty()) return State::wait;
  const uint64_t probe = entries_.front().probe;
  if (probe <= released_through) return State::release;  // probe 0 included: its turn came
  return probe <= failed_through ? State::fail : State::wait;
}

void ReplyQueue::pop_front() {
  const uint32_t len = entries_.front().len;
  buf_.consume(len);
  bytes_ -= len;
  entries_.pop_front();
}

uint64_t ReplyQueue::clear() {
  const uint64_t dropped = bytes_;
  entries_.clear();
  buf_.clear();
  bytes_ = 0;
  return dropped;
}

bool ReplyQueue::holds_reply() const {
  for (const Entry& e : entries_)
    if (!e.message) return true;
  return false;
}

void ReplyQueue::add_by_kind(uint64_t* counts, uint64_t* bytes) const {
  for (const Entry& e : entries_) {
    counts[static_cast<size_t>(e.kind)]++;
    bytes[static_cast<size_t>(e.kind)] += e.len;
  }
}

}  // namespace dp::gate
