#include "proxy/checkpoint/checkpoint_policy.h"

#include <algorithm>

namespace dp {

CheckpointPolicy::CheckpointPolicy(CheckpointPolicyOptions opts, uint64_t now_ms)
    : opts_(opts), last_ms_(now_ms) {}

std::string CheckpointPolicy::due(uint64_t now_ms, uint64_t log_bytes) const {
  if (retry_at_ms_ != 0 && now_ms < retry_at_ms_) return "";
  if (log_bytes > opts_.max_log_bytes) {
    return "log holds " + std::to_string(log_bytes) + " bytes since the last checkpoint (> " +
           "checkpoint.max_log_bytes " + std::to_string(opts_.max_log_bytes) + ")";
  }
  if (opts_.interval_ms > 0 && now_ms - last_ms_ >= opts_.interval_ms &&
      log_bytes >= opts_.min_interval_bytes) {
    return "checkpoint.interval of " + std::to_string(opts_.interval_ms / 1000) +
           " s passed with " + std::to_string(log_bytes) + " log bytes since the last checkpoint";
  }
  return "";
}

void CheckpointPolicy::succeeded(uint64_t now_ms) {
  last_ms_ = now_ms;
  retry_at_ms_ = 0;
  backoff_ms_ = 0;
}

void CheckpointPolicy::failed(uint64_t now_ms) {
  backoff_ms_ = backoff_ms_ == 0 ? opts_.retry_min_ms : std::min(backoff_ms_ * 2, opts_.retry_max_ms);
  retry_at_ms_ = now_ms + backoff_ms_;
}

PublishCheck check_publish(const std::string& checkpoint_replid, uint64_t checkpoint_offset,
                           const std::string& log_replid, uint64_t log_start,
                           uint64_t log_durable, std::string* why) {
  const std::string at = std::to_string(checkpoint_offset);
  if (checkpoint_replid != log_replid) {
    *why = "the upstream's replid " + checkpoint_replid + " (checkpoint at " + at +
           ") differs from the log's replid " + log_replid +
           ": the snapshot belongs to another history";
    return PublishCheck::discard;
  }
  if (checkpoint_offset < log_start) {
    *why = "checkpoint offset " + at + " is below the log's start " + std::to_string(log_start) +
           ": a newer checkpoint already exists";
    return PublishCheck::discard;
  }
  if (checkpoint_offset > log_durable) {
    *why = "waiting for the log to be durable up to offset " + at + " (now " +
           std::to_string(log_durable) + ")";
    return PublishCheck::wait;
  }
  why->clear();
  return PublishCheck::publish;
}

}  // namespace dp
