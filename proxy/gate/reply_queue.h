// The ordered held-reply queue of one session: the per-session half of the
// reply gate (the shared half, probe batches and the release schedule, is
// durability_gate.h).
//
//   push(reply, probe) ──▶ [ front · · · back ] ──▶ pop_front() while the
//                                                    front is not `wait`
//
// Replies leave strictly in the order pushed: one that waits holds every
// reply behind it (write from the front while the front is done).  An entry
// covered by probe P may leave once P <= released_through (its bytes go to
// the client) or, before that, once P <= failed_through (it did not become
// durable in time: the caller answers an error in its place).  An entry
// pushed with probe 0 waits only for its turn.  The bytes live in one
// buffer, in order, so a deep pipeline costs no allocation per reply.
//
// Pure: no I/O, no clock, no gate; the caller passes the gate's numbers and
// the time in.  Not synchronised (the session's loop thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string_view>

#include "proxy/admin/metrics.h"
#include "proxy/base/byte_buffer.h"

namespace dp::gate {

class ReplyQueue {
 public:
  static constexpr size_t kKindCount = static_cast<size_t>(admin::HoldKind::ordered) + 1;

  struct Entry {
    uint64_t probe = 0;     // the probe covering it; 0: waits only for its turn
    admin::HoldKind kind = admin::HoldKind::ordered;  // metrics only
    uint64_t since_ns = 0;  // when it was queued, on the caller's clock (metrics only)
    bool close_after = false;  // the connection closes once this reply is delivered
    bool message = false;      // a pub/sub message or MONITOR line, not a reply: nothing is due
    uint32_t len = 0;          // its bytes (set by push)
  };
  enum class State : uint8_t {
    wait,     // empty, or the front's probe is neither released nor failed
    release,  // the front may go: send its bytes
    fail,     // the front's probe failed: answer an error instead
  };

  void push(std::string_view bytes, Entry e);

  // What the front may do under the gate's schedule (released_through and
  // failed_through are DurabilityGate's; 0 and 0 without a gate).
  State front_state(uint64_t released_through, uint64_t failed_through) const;
  const Entry& front() const { return entries_.front(); }  // not empty
  std::string_view front_bytes() const { return {buf_.data(), entries_.front().len}; }
  void pop_front();

  // Forgets every entry (the client left, or the session closes); returns
  // the bytes dropped.
  uint64_t clear();

  bool empty() const { return entries_.empty(); }
  size_t size() const { return entries_.size(); }
  uint64_t bytes() const { return bytes_; }
  // An entry is a reply, not a message (walks the queue).
  bool holds_reply() const;
  // Adds the entries and their bytes, by admin::HoldKind index, to `counts`
  // and `bytes` (arrays of kKindCount); walks the queue.
  void add_by_kind(uint64_t* counts, uint64_t* bytes) const;

 private:
  std::deque<Entry> entries_;
  ByteBuffer buf_;  // the entries' bytes, in order
  uint64_t bytes_ = 0;
};

}  // namespace dp::gate
