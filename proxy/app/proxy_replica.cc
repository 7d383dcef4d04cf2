// The main replica link (its full resyncs: the new history's checkpoint,
// its stream: the log) and durability: ROLE probes, the durable offset
// reaching the gate, a failed log.
#include "proxy/app/proxy.h"
#include "proxy/base/logger.h"

namespace dp {

// The full resync's RDB goes to the Checkpointer, which writes, fsyncs and
// commits it on libuv's pool (proxy/checkpoint/checkpointer.h); the log
// switches to the new history once the commit is done (history_switched).
// Until then nothing is served, stream bytes wait in held_stream_ and no
// ACK claims more than 0.
void Proxy::on_full_resync(const std::string& replid, uint64_t offset) {
  LOG_INFO("replica", "full resync: replid %s offset %llu; writing its checkpoint (the log keeps replid %s until "
           "it is durable)", replid.c_str(), static_cast<unsigned long long>(offset),
           log_->replid().empty() ? "(none)" : log_->replid().c_str());
  held_stream_.clear();
  Checkpointer::HistoryHooks hooks;
  hooks.pause = [this] { if (link_) link_->pause(); };
  hooks.resume = [this] { if (link_) link_->resume(); };
  hooks.done = [this](const Checkpointer::HistoryResult& r) { history_switched(r); };
  std::string error;
  if (!checkpointer_->begin_history(replid, offset, std::move(hooks), &error))
    restart_link("cannot store the full resync's checkpoint: " + error);
}

void Proxy::on_rdb_data(std::string_view bytes) {
  if (switching_history()) checkpointer_->history_data(bytes);
}

void Proxy::on_rdb_done() {
  if (!switching_history()) return restart_link("the full resync's checkpoint was not stored");
  link_->durable(0);  // the new history's base is not durable yet: the first ACK claims nothing
  checkpointer_->history_complete();
}

void Proxy::history_switched(const Checkpointer::HistoryResult& r) {
  std::string held;
  held.swap(held_stream_);
  if (!r.ok) {
    if (r.at_commit) metrics_.inc(admin::Metric::errors_total, admin::ErrorCause::checkpoint);
    return restart_link(r.error);
  }
  // The new history is adopted: its base is durable, the log restarts at C.
  // A full resync of the same upstream continues its offsets, and a reply
  // answered at or below C is in the checkpoint: the gate carries on.  An
  // adopted dataset (or any base below what the gate has seen) does not:
  // the gate starts again from C, or C's small offsets would count as
  // durable at once.
  if (gate_ && (foreign_history_ || log_->durable_offset() < gate_->durable_offset()))
    gate_->new_history(log_->durable_offset(), "the upstream switched to another history (replid " + r.replid +
                                                   ") before the write was durable");
  foreign_history_ = false;
  tracker_->reset(r.offset);
  tracked_end_ = r.offset;
  metrics_.inc(admin::Metric::checkpoints_total);
  metrics_.observe(admin::Metric::checkpoint_seconds, r.commit_seconds);
  metrics_.set(admin::Metric::checkpoint_offset, double(r.offset));
  LOG_INFO("checkpoint", "checkpoint at offset %llu: %llu bytes; the log follows replid %s from there",
           static_cast<unsigned long long>(r.offset), static_cast<unsigned long long>(r.rdb_bytes),
           r.replid.c_str());
  if (!link_) return;
  link_->durable(log_->durable_offset());
  if (!held.empty()) on_stream(held, held_stream_first_);  // what arrived during the commit
  if (link_ && log_->unsynced_bytes() <= cfg_.max_unsynced_bytes) link_->resume();
  serve_if_verified();
}

void Proxy::restart_link(const std::string& why) {
  LOG_WARN("replica", "%s; restarting the replication link in %llu ms", why.c_str(),
           static_cast<unsigned long long>(link_backoff_ms_));
  // An unfinished switch: the temp checkpoint goes, the old history stands.
  // A commit in flight finishes (history_switched then finds no link).
  if (switching_history() && !checkpointer_->history_committing())
    checkpointer_->abandon("the main replica link restarted");
  held_stream_.clear();
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
  if (switching_history()) {  // the stream after C: logged once the log follows C
    if (held_stream_.empty()) held_stream_first_ = first_offset;
    held_stream_.append(bytes);
    if (held_stream_.size() > cfg_.max_unsynced_bytes) link_->pause();  // resumed by history_switched
    return;
  }
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
  if (streaming) serve_if_verified();
  if (state == upstream::LinkState::disconnected) {
    if (stopping()) return;
    // A resync whose RDB is whole is committing and goes on (the stream
    // already held is valid); one cut before is dropped.
    if (switching_history() && !checkpointer_->history_committing()) {
      LOG_WARN("replica", "full resync at offset %llu cut after %llu RDB bytes: not adopted; the log keeps replid %s",
               static_cast<unsigned long long>(checkpointer_->snapshot_offset()),
               static_cast<unsigned long long>(checkpointer_->snapshot_bytes()),
               log_->replid().empty() ? "(none)" : log_->replid().c_str());
      checkpointer_->abandon("the main replica link was cut during its full resync");
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

void Proxy::serve_if_verified() {
  if (!link_streaming_ || !verified() || switching_history()) return;
  hold_since_ms_.reset();
  verified_control_gen_ = control_gen_;
  enter(recovery::State::serving, "replication stream flowing");
  set_serving(true, "");
  for (uint64_t id : gate_->unanswered_probes()) send_probe(id);
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
    if (!gate_) return;
    gate_->probe_answered(id, offset);
    // The log failed: what this answer did not release never will be.
    if (ctx_.log_failed) gate_->fail_answered("the durable log failed: " + ctx_.log_failure);
  });
}

void Proxy::on_durable_async(uv_async_t* a) { static_cast<Proxy*>(a->data)->durable_moved(); }

void Proxy::durable_moved() {
  if (!log_) return;
  // What was published before a failure is durable: release it first.
  uint64_t d = log_->durable_offset();
  gate_->durable(d);
  if (log_->failed()) return log_failed(log_->failure_reason());
  if (link_ && !switching_history()) {  // history_switched() reports the new base
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
