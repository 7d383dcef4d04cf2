// The main replica link (its full resyncs: the new history's checkpoint,
// its stream: the log) and durability: ROLE probes, the durable offset
// reaching the gate, a failed log.
#include "proxy/app/proxy.h"
#include "proxy/base/logger.h"

namespace dp {

void Proxy::on_full_resync(const std::string& replid, uint64_t offset) {
  LOG_INFO("replica", "full resync: replid %s offset %llu; writing its checkpoint (the log keeps replid %s until "
           "it is durable)", replid.c_str(), static_cast<unsigned long long>(offset),
           log_->replid().empty() ? "(none)" : log_->replid().c_str());
  if (checkpointer_) checkpointer_->abandon("the main replica link began a full resync");
  std::string error;
  history_ = log::HistorySwitch::begin(checkpoints_.get(), log_.get(), replid, offset, &error);
  if (!history_) restart_link("cannot store the full resync's checkpoint: " + error);
}

void Proxy::on_rdb_data(std::string_view bytes) {
  std::string error;
  if (history_ && !history_->write(bytes, &error)) restart_link("cannot store the full resync's checkpoint: " + error);
}

void Proxy::on_rdb_done() {
  if (!history_) return restart_link("the full resync's checkpoint was not stored");
  std::unique_ptr<log::HistorySwitch> sw = std::move(history_);
  std::string error;
  uint64_t t0 = uv_hrtime();
  if (!sw->commit(&error)) {
    metrics_.inc(admin::Metric::errors_total, admin::ErrorCause::checkpoint);
    return restart_link("cannot commit the full resync's checkpoint (the log keeps its history): " + error);
  }
  // The new history is adopted: its base is durable, the log restarts at C.
  tracker_->reset(sw->offset());
  tracked_end_ = sw->offset();
  metrics_.inc(admin::Metric::checkpoints_total);
  metrics_.observe(admin::Metric::checkpoint_seconds, double(uv_hrtime() - t0) / 1e9);
  metrics_.set(admin::Metric::checkpoint_offset, double(sw->offset()));
  LOG_INFO("checkpoint", "checkpoint at offset %llu: %llu bytes; the log follows replid %s from there",
           static_cast<unsigned long long>(sw->offset()), static_cast<unsigned long long>(sw->rdb_bytes()),
           sw->replid().c_str());
  link_->durable(log_->durable_offset());
}

void Proxy::restart_link(const std::string& why) {
  LOG_WARN("replica", "%s; restarting the replication link in %llu ms", why.c_str(),
           static_cast<unsigned long long>(link_backoff_ms_));
  history_.reset();  // an unfinished switch: the temp checkpoint goes, the old history stands
  if (link_) {
    upstream::ReplicaLink* old = link_.release();
    old->close([old] { delete old; });  // its close callbacks run on a later loop turn
  }
  link_streaming_ = false;
  if (verified()) enter(recovery::State::waiting, "replication link restarted: " + why);
  hold_since_ms_.reset();
  metrics_.inc(admin::Metric::errors_total, admin::ErrorCause::replica_link);
  set_serving(false, "replication link restarted: " + why);
  link_retry_at_ = uv_now(&loop_) + link_backoff_ms_;
  link_backoff_ms_ = std::min<uint64_t>(link_backoff_ms_ * 2, 5000);
}

void Proxy::on_continue(const std::string& new_replid) {
  LOG_INFO("replica", "continuing from offset %llu%s%s", static_cast<unsigned long long>(log_->end_offset()),
           new_replid.empty() ? "" : " with new replid ", new_replid.c_str());
  if (!new_replid.empty()) log_->set_replid(new_replid);
  // The stream goes on at the byte after the log's end; a tracker that saw
  // every byte up to there keeps its state (a command cut by the drop
  // continues), otherwise it starts afresh.
  if (tracked_end_ != log_->end_offset()) tracker_->reset(log_->end_offset());
  tracked_end_ = log_->end_offset();
}

void Proxy::on_stream(std::string_view bytes, uint64_t first_offset) {
  if (first_offset != log_->end_offset() + 1) {
    LOG_ERROR("replica", "stream gap: got offset %llu, log ends at %llu; resynchronising",
              static_cast<unsigned long long>(first_offset), static_cast<unsigned long long>(log_->end_offset()));
    return restart_link("stream gap at offset " + std::to_string(first_offset) + " (log ends at " +
                        std::to_string(log_->end_offset()) + ")");
  }
  log_->append(bytes);
  tracker_->feed(bytes, first_offset);
  tracked_end_ = log_->end_offset();
  metrics_.set(admin::Metric::offset_received, double(log_->end_offset()));
  if (log_->unsynced_bytes() > cfg_.max_unsynced_bytes) {
    link_->pause();
    ctx_.stream_lagging = true;  // sessions stop reading at their next turn
  }
}

void Proxy::on_state(upstream::LinkState state, const std::string& reason) {
  bool streaming = state == upstream::LinkState::streaming;
  const bool was_streaming = link_streaming_;
  if (streaming && !link_streaming_) {
    link_backoff_ms_ = 100;
    LOG_INFO("replica", "replication stream flowing at offset %llu%s", static_cast<unsigned long long>(log_->end_offset()),
             hold_since_ms_ ? "; releasing the held replies" : "");
  }
  link_streaming_ = streaming;
  if (streaming && verified()) {
    hold_since_ms_.reset();
    verified_control_gen_ = control_gen_;
    enter(recovery::State::serving, "replication stream flowing");
    set_serving(true, "");
    for (uint64_t id : gate_->unanswered_probes()) send_probe(id);
  }
  if (state == upstream::LinkState::disconnected) {
    if (stopping()) return;
    if (history_) {
      LOG_WARN("replica", "full resync at offset %llu cut after %llu RDB bytes: not adopted; the log keeps replid %s",
               static_cast<unsigned long long>(history_->offset()),
               static_cast<unsigned long long>(history_->rdb_bytes()),
               log_->replid().empty() ? "(none)" : log_->replid().c_str());
      history_.reset();
    }
    metrics_.inc(admin::Metric::upstream_reconnects_total);
    metrics_.inc(admin::Metric::errors_total, admin::ErrorCause::replica_link);
    // Same process: the control connection that was up when the link was
    // verified never dropped, so the upstream still holds its data.
    const bool same_process = ((was_streaming && verified()) || hold_since_ms_) && ctx_.serving && control_ &&
                              control_->up() && verified_control_gen_ == control_gen_ &&
                              state_ != recovery::State::refused;
    if (verified()) enter(recovery::State::waiting, "replication link down: " + reason);
    if (same_process) {
      if (!hold_since_ms_) hold_since_ms_ = uv_now(&loop_);
      LOG_WARN("replica", "%s; the upstream process is the same (its control connection never dropped): "
               "sessions go on, replies are held until the link is back (re-checking in %llu ms)",
               reason.c_str(), static_cast<unsigned long long>(link_backoff_ms_));
    } else {
      LOG_WARN("replica", "%s; re-checking the upstream in %llu ms", reason.c_str(),
               static_cast<unsigned long long>(link_backoff_ms_));
      hold_since_ms_.reset();
      set_serving(false, "replication link down: " + reason);
    }
    link_retry_at_ = uv_now(&loop_) + link_backoff_ms_;
    link_backoff_ms_ = std::min<uint64_t>(link_backoff_ms_ * 2, 5000);
  }
}

void Proxy::send_probe(uint64_t id) {
  if (!control_ || !control_->up()) return;  // re-sent when the link is back
  control_->role([this, id](bool ok, uint64_t offset, const std::string& err) {
    if (!ok) {
      // E.g. -BUSY while a script runs past its time limit: the replies it
      // covers wait (bounded by hold_timeout) and the probe goes again on
      // the next tick, so they are released once the server answers.
      if (control_ && control_->up()) {
        if (!probe_failing_) LOG_WARN("control", "ROLE probe failed: %s; retrying every tick", err.c_str());
        probe_failing_ = probe_retry_ = true;
      }
      return;
    }
    last_probe_offset_ = offset;
    probe_failing_ = false;
    // An offset is only meaningful for the upstream history the log follows:
    // a restarted upstream answers small offsets before recovery notices it.
    // Unanswered probes are sent again once the stream flows (on_state).
    if (state_ != recovery::State::serving) return;
    if (gate_) gate_->probe_answered(id, offset);
  });
}

void Proxy::on_durable_async(uv_async_t* a) { static_cast<Proxy*>(a->data)->durable_moved(); }

void Proxy::durable_moved() {
  if (!log_) return;
  if (log_->failed()) return log_failed(log_->failure_reason());
  uint64_t d = log_->durable_offset();
  gate_->durable(d);
  if (link_) {
    link_->durable(d);
    if (log_->unsynced_bytes() < cfg_.max_unsynced_bytes / 2) link_->resume();
  }
  if (ctx_.stream_lagging && log_->unsynced_bytes() < cfg_.max_unsynced_bytes / 2) {
    ctx_.stream_lagging = false;
    ctx_.held_bytes_dropped();  // resumes reading in every session
  }
}

void Proxy::log_failed(const std::string& reason) {
  if (ctx_.log_failed) return;
  ctx_.log_failed = true;
  ctx_.log_failure = reason;
  LOG_ERROR("log", "durable log failed: %s; no write is acknowledged until restart", reason.c_str());
  metrics_.set(admin::Metric::log_failed, 1);
  metrics_.inc(admin::Metric::errors_total, admin::ErrorCause::log_io);
  gate_->expire(uv_now(&loop_), 0, "the durable log failed: " + reason, /*all=*/true);
}

}  // namespace dp
