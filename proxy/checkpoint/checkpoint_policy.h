// The checkpointer's decisions, apart from its I/O: when an automatic
// checkpoint is due, and whether a finished checkpoint may be published
// against the log as it is now.  Pure: no clock of its own, no I/O; the
// caller passes loop time in milliseconds.  Tests: tests/unit/checkpoint/
// checkpoint_policy_test.cc.
//
// Triggers (DESIGN.md §5):
//   size      log bytes since the last checkpoint > checkpoint.max_log_bytes
//   interval  checkpoint.interval passed since the last checkpoint (or since
//             start) and the log grew by at least `min_interval_bytes`
//             (the upstream's keep-alive PINGs alone never trigger one)
// After a failed attempt, automatic triggers wait (1 s, doubling, at most
// 60 s); requests on demand do not.
//
// Publishing (checkpoint at replid R, offset C; log replid L, start S,
// durable end D): R != L: discard (another history); C < S: discard (older
// than what the log already starts from); C > D: wait (segments may be
// dropped only below a durable end); else publish.
//
// Threads: one owner thread (the proxy's loop).
#pragma once

#include <cstdint>
#include <string>

namespace dp {

struct CheckpointPolicyOptions {
  uint64_t max_log_bytes = 1ull << 30;  // checkpoint.max_log_bytes
  uint64_t interval_ms = 3600 * 1000;   // checkpoint.interval; 0 = never by time
  uint64_t min_interval_bytes = 4096;   // log growth the interval trigger needs
  uint64_t retry_min_ms = 1000;
  uint64_t retry_max_ms = 60000;
};

class CheckpointPolicy {
 public:
  CheckpointPolicy(CheckpointPolicyOptions opts, uint64_t now_ms);

  // Why an automatic checkpoint is due now ("" = not due).  `log_bytes`:
  // stream bytes held since the last checkpoint.
  std::string due(uint64_t now_ms, uint64_t log_bytes) const;
  void succeeded(uint64_t now_ms);  // restarts the interval, clears the backoff
  void failed(uint64_t now_ms);     // automatic triggers wait, doubling
  uint64_t retry_at_ms() const { return retry_at_ms_; }  // 0 = no backoff
  const CheckpointPolicyOptions& options() const { return opts_; }

 private:
  CheckpointPolicyOptions opts_;
  uint64_t last_ms_;          // last success (or start)
  uint64_t retry_at_ms_ = 0;  // automatic triggers wait until then
  uint64_t backoff_ms_ = 0;
};

enum class PublishCheck { publish, wait, discard };

// See the header comment.  `why` names the offsets or replids involved for
// wait and discard.
PublishCheck check_publish(const std::string& checkpoint_replid, uint64_t checkpoint_offset,
                           const std::string& log_replid, uint64_t log_start,
                           uint64_t log_durable, std::string* why);

}  // namespace dp
