// The reply gate's shared half: probe batches and the release schedule.
// (The per-session half, the ordered reply queue, is reply_queue.h.)
//
//   reply arrives ──▶ session queues it, asks gate.cover(session)
//                          │ (one batch per loop turn)
//   end of loop turn ──▶ flush(): one ROLE probe for the whole batch
//   probe answers o ──▶ batch waits for durable ≥ o; tokens resolved at o
//   log fsync moves ──▶ durable(d): batches with o ≤ d released, their
//                       sessions flush their queues from the front
//
// Probe ids grow by one per batch and probe answers arrive in order with
// non-decreasing offsets, so "released through probe id P" is one number:
// a held reply covered by probe P is durable once P <= released_through().
// Work per durable() call is proportional to the batches released.
//
// Loop thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "proxy/gate/pending_keys.h"

namespace dp::gate {

// What a session offers the gate.
class GateClient {
 public:
  virtual ~GateClient() = default;
  // Replies covered by probes <= gate.released_through() may go.
  virtual void on_release() = 0;
  // Replies covered by probes <= gate.failed_through() will not become
  // durable in time: answer them with an error naming `reason`.
  virtual void on_fail(const std::string& reason) = 0;
};

class DurabilityGate {
 public:
  using ProbeFn = std::function<void(uint64_t probe_id)>;  // must later call probe_answered/probe_failed
  using ClientLookup = std::function<GateClient*(uint64_t session_id)>;

  DurabilityGate(ProbeFn send_probe, ClientLookup lookup);

  PendingKeys& pending() { return pending_; }

  // The id of the probe that will cover a reply arriving now.
  uint64_t current_probe() const { return next_id_; }
  // Registers a reply of `session` (and the write token, if any) in the
  // current batch.  Cheap when the session is already in it.
  void cover(uint64_t session_id, Token* token, uint64_t now_ms);
  // A reply that must wait only until the log reaches `offset` (a read of
  // keys whose pending writes all have known offsets): joins the oldest
  // answered batch at or above `offset` and returns its probe id, or
  // returns 0 when no such batch exists or it already failed (then cover()
  // it as usual: a batch failed by the timeout says nothing of this reply).
  uint64_t cover_through(uint64_t session_id, uint64_t offset);
  // A reply whose own offset is known: a ROLE pipelined right behind it on
  // a shared upstream connection answered `offset`, so everything it did
  // is at or below it (no control-link probe).  Its write marks are
  // resolved at `offset` (or the highest offset answered so far, if
  // higher); the reply joins the newest batch if it is answered at or above
  // `offset` and was made this loop turn, or a new answered batch behind
  // every batch so far (the open one is sent first: its replies' offsets
  // are not known, and ids must stay in release order).  Returns the probe
  // id that covers it.  It
  // releases nothing itself (the caller queues the reply first); a batch
  // the durable offset already covers is released at once when nothing
  // waits before it.
  uint64_t cover_at(uint64_t session_id, Token* token, uint64_t offset, uint64_t now_ms);
  // End of a loop turn: sends the current batch's probe if it has members.
  void flush();
  bool batch_open() const { return !open_.sessions.empty() || !open_.tokens.empty(); }

  void probe_answered(uint64_t probe_id, uint64_t offset);
  // The control link dropped the probe: the caller re-sends it (same id)
  // once the link is back; nothing is released meanwhile.
  std::vector<uint64_t> unanswered_probes() const;

  void durable(uint64_t offset);
  uint64_t durable_offset() const { return durable_; }
  uint64_t released_through() const { return released_through_; }
  uint64_t failed_through() const { return failed_through_; }
  // Why the batches through failed_through() failed (the latest expire()'s
  // reason): what a reply covered by one of them is answered with, whether
  // or not its session was in the batch when it failed.
  const std::string& fail_reason() const { return fail_reason_; }

  // Fails every batch older than `timeout_ms` (and, with `all`, every batch)
  // with `reason`; the proxy calls it from a timer and on log failure.
  void expire(uint64_t now_ms, uint64_t timeout_ms, const std::string& reason, bool all = false);
  // Fails every answered batch not yet released: after the log failed the
  // durable offset never moves again, so a reply that joined a batch after
  // the failure (its command was in flight then) gets its error when its
  // probe answers, not at hold_timeout.  Unanswered batches may still be
  // released by their answer (a read at or below the durable offset).
  void fail_answered(const std::string& reason);
  // The log switched to another history (a full resync, an adopted
  // dataset) whose durable base is `base`, possibly below every offset seen
  // so far: every waiting reply fails with `reason` (its offset belonged to
  // the old history), and the durable offset and the probes' schedule start
  // again from the new base.
  void new_history(uint64_t base, const std::string& reason);

  // Figures for INFO/metrics.
  size_t waiting_batches() const { return batches_.size(); }
  uint64_t last_probe_offset() const { return last_offset_; }
  uint64_t oldest_wait_ms(uint64_t now_ms) const;
  uint64_t probes_sent() const { return probes_sent_; }
  uint64_t inline_batches() const { return inline_batches_; }

 private:
  struct Batch {
    uint64_t id = 0;
    uint64_t created_ms = 0;
    bool answered = false;
    uint64_t offset = 0;
    std::vector<uint64_t> sessions;
    std::vector<Token> tokens;
  };
  void release_ready();
  void fail_through(uint64_t through, const std::vector<uint64_t>& touched, const std::string& reason);

  ProbeFn send_probe_;
  ClientLookup lookup_;
  PendingKeys pending_;
  Batch open_;                  // collecting this loop turn (id = next_id_)
  std::deque<Batch> batches_;   // sent, in id order
  uint64_t next_id_ = 1;
  uint64_t durable_ = 0;
  uint64_t released_through_ = 0;
  uint64_t failed_through_ = 0;
  uint64_t last_offset_ = 0;
  uint64_t last_cover_session_ = 0;
  uint64_t probes_sent_ = 0;
  uint64_t inline_batches_ = 0;  // batches answered by a ROLE behind the replies (cover_at)
  std::string fail_reason_;
};

}  // namespace dp::gate
