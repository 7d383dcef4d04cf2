// What the proxy tells about itself: INFO durability, /status, /readyz and
// the gauges of /metrics.
#include <cstdio>
#include <iterator>
#include <sstream>

#include "proxy/app/effective_config.h"
#include "proxy/app/proxy.h"
#include "proxy/base/json.h"
#include "proxy/session/session.h"

namespace dp {

bool Proxy::ready(std::string* reason) const {
  if (stopping()) return *reason = "shutting down", false;
  if (!control_ || !control_->up()) return *reason = "upstream " + cfg_.upstream.str() + " not connected", false;
  if (!ctx_.serving) return *reason = not_ready_.empty() ? "starting" : not_ready_, false;
  if (gate_) {
    if (ctx_.log_failed) return *reason = "durable log failed: " + ctx_.log_failure, false;
    if (!link_streaming_) return *reason = "replication stream from the upstream is not flowing", false;
    if (gate_->oldest_wait_ms(ctx_.now_ms) > cfg_.hold_timeout_ms)
      return *reason = "replies held longer than durability.hold_timeout: the log is fsynced through offset " +
                       std::to_string(log_->durable_offset()) + ", the upstream is at " +
                       std::to_string(last_probe_offset_),
             false;
  }
  return true;
}

std::string Proxy::info_durability() const {
  std::ostringstream o;
  o << "# Durability\r\n";
  o << "durability_mode:" << (gate_ ? "always" : "off") << "\r\n";
  std::string why;
  o << "ready:" << (ready(&why) ? 1 : 0) << "\r\n";
  if (!why.empty()) o << "not_ready_reason:" << why << "\r\n";
  if (gate_) {
    uint64_t durable = log_->durable_offset();
    o << "log_replid:" << log_->replid() << "\r\n";
    o << "log_start_offset:" << log_->start_offset() << "\r\n";
    o << "received_offset:" << log_->end_offset() << "\r\n";
    o << "fsynced_offset:" << durable << "\r\n";
    o << "upstream_offset:" << last_probe_offset_ << "\r\n";
    o << "lag_bytes:" << (last_probe_offset_ > durable ? last_probe_offset_ - durable : 0) << "\r\n";
    o << "unsynced_bytes:" << log_->unsynced_bytes() << "\r\n";
    o << "replica_link:" << (link_ ? upstream::to_string(link_->state()) : "none") << "\r\n";
    o << "replica_link_acked_offset:" << (link_ ? link_->acked_offset() : 0) << "\r\n";
    auto st = log_->stats();
    o << "log_fsyncs:" << st.fsyncs << "\r\n";
    o << "log_last_fsync_us:" << st.last_fsync_ns / 1000 << "\r\n";
    o << "log_failed:" << (ctx_.log_failed ? 1 : 0) << "\r\n";
    if (ctx_.log_failed) o << "log_failure:" << ctx_.log_failure << "\r\n";
    uint64_t held = 0, held_bytes = 0;
    for (auto& [id, s] : sessions_) held += s->held_count(), held_bytes += s->held_bytes();
    o << "held_replies:" << held << "\r\n";
    o << "held_bytes:" << held_bytes << "\r\n";
    {
      // By kind (write, read, notification, ordered = not held itself but
      // behind a held reply), and hold times so far (seconds, released only).
      uint64_t n[Session::kHoldKindCount] = {}, b[Session::kHoldKindCount] = {};
      for (auto& [id, s] : sessions_) s->add_held_by_kind(n, b);
      static const char* const kKinds[] = {"write", "read", "notification", "ordered"};
      static_assert(std::size(kKinds) == Session::kHoldKindCount);
      for (size_t k = 0; k < Session::kHoldKindCount; ++k) {
        o << "held_" << kKinds[k] << ":replies=" << n[k] << ",bytes=" << b[k]
          << ",hold_seconds_total=" << metrics_.histogram_sum(admin::Metric::hold_seconds, int(k)) << "\r\n";
      }
      o << "hold_timeouts:" << uint64_t(metrics_.get(admin::Metric::hold_timeouts_total)) << "\r\n";
    }
    o << "waiting_probes:" << gate_->waiting_batches() << "\r\n";
    // Control-link ROLE probes sent, and hold batches whose offset came from
    // a ROLE behind the replies on a shared upstream connection instead.
    o << "probes_sent:" << gate_->probes_sent() << "\r\n";
    o << "shared_role_offsets:" << gate_->inline_batches() << "\r\n";
    o << "oldest_wait_ms:" << gate_->oldest_wait_ms(ctx_.now_ms) << "\r\n";
    o << "pending_keys:" << gate_->pending().key_count() << "\r\n";
    if (auto cp = checkpoints_->latest()) {
      o << "checkpoint_offset:" << cp->offset << "\r\n";
      o << "checkpoint_bytes:" << cp->size << "\r\n";
    }
    if (checkpointer_) o << "checkpoint_in_progress:" << (checkpointer_->running() ? 1 : 0) << "\r\n";
  }
  o << "clients:" << sessions_.size() << "\r\n";
  return o.str();
}

std::string Proxy::status_json() const {
  std::ostringstream o;
  std::string why;
  bool r = ready(&why);
  o << "{\"version\":" << json_quoted(DP_VERSION) << ",\"ready\":" << (r ? "true" : "false");
  if (!r) o << ",\"not_ready_reason\":" << json_quoted(why);
  o << ",\"config\":" << effective_config_json(cfg_);
  o << ",\"durability\":" << json_quoted(gate_ ? "always" : "off");
  o << ",\"clients\":" << sessions_.size();
  if (gate_) {
    uint64_t held = 0, held_bytes = 0;
    for (auto& [id, s] : sessions_) held += s->held_count(), held_bytes += s->held_bytes();
    uint64_t durable = log_->durable_offset();
    o << ",\"replid\":" << json_quoted(log_->replid());
    o << ",\"offsets\":{\"received\":" << log_->end_offset() << ",\"fsynced\":" << durable
      << ",\"upstream\":" << last_probe_offset_ << ",\"log_start\":" << log_->start_offset() << "}";
    o << ",\"lag_bytes\":" << (last_probe_offset_ > durable ? last_probe_offset_ - durable : 0);
    o << ",\"held_replies\":" << held << ",\"held_bytes\":" << held_bytes;
    o << ",\"replica_link\":" << json_quoted(link_ ? upstream::to_string(link_->state()) : "none");
    o << ",\"log_failed\":" << (ctx_.log_failed ? "true" : "false");
    if (auto cp = checkpoints_->latest())
      o << ",\"checkpoint\":{\"offset\":" << cp->offset << ",\"bytes\":" << cp->size
        << ",\"replid\":" << json_quoted(cp->replid) << "}";
    if (checkpointer_) o << ",\"checkpointer\":" << checkpointer_->status_json();
  }
  o << "}";
  return o.str();
}

void Proxy::refresh_metrics() {
  std::string why;
  metrics_.set(admin::Metric::clients_connected, double(sessions_.size()));
  metrics_.set(admin::Metric::ready, ready(&why) ? 1 : 0);
  metrics_.set(admin::Metric::upstream_connected, control_ && control_->up() ? 1 : 0);
  uint64_t held[Session::kHoldKindCount] = {}, held_bytes[Session::kHoldKindCount] = {};
  for (auto& [id, s] : sessions_) s->add_held_by_kind(held, held_bytes);
  for (size_t k = 0; k < Session::kHoldKindCount; ++k) {
    metrics_.set(admin::Metric::held_replies, double(held[k]), int(k));
    metrics_.set(admin::Metric::held_bytes, double(held_bytes[k]), int(k));
  }
  if (gate_) {
    fsync_seconds_.copy_to(&metrics_);
    fsync_batch_bytes_.copy_to(&metrics_);
    metrics_.set(admin::Metric::log_bytes, double(log_->end_offset() - log_->start_offset()));
    uint64_t durable = log_->durable_offset();
    metrics_.set(admin::Metric::offset_received, double(log_->end_offset()));
    metrics_.set(admin::Metric::offset_fsynced, double(durable));
    metrics_.set(admin::Metric::offset_upstream, double(last_probe_offset_));
    metrics_.set(admin::Metric::stream_lag_bytes, double(last_probe_offset_ > durable ? last_probe_offset_ - durable : 0));
    metrics_.set(admin::Metric::replica_link_up, link_streaming_ ? 1 : 0);
    metrics_.set(admin::Metric::log_failed, ctx_.log_failed ? 1 : 0);
  }
}

}  // namespace dp
