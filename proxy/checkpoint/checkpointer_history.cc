// Checkpointer's second source: the main replica link's full resync (the
// first checkpoint, or a new history), handed over by the proxy.  Its bytes
// and its commit take the same pool jobs as a checkpoint of the
// checkpointer's own link (checkpointer.cc); only the end differs: the log
// switches to the new history instead of dropping segments below C.
#include "proxy/checkpoint/checkpointer.h"

namespace dp {

bool Checkpointer::begin_history(const std::string& replid, uint64_t offset, HistoryHooks hooks,
                                 std::string* error) {
  if (!life_.open()) {
    *error = "the proxy is shutting down";
    return false;
  }
  abandon("the main replica link began a full resync");
  epoch_.fetch_add(1);
  {
    // A pool job of the abandoned checkpoint may still be queued: it sees
    // the new epoch and does nothing; pump() waits for its job_done.
    std::lock_guard<std::mutex> g(store_mu_);
    writer_ = store_->begin(replid, offset, error);
  }
  if (!writer_) return false;
  kind_ = Kind::history;
  hooks_ = std::move(hooks);
  phase_ = Phase::receiving;
  trigger_ = "the main replica link's full resync";
  replid_ = replid;
  offset_ = offset;
  rdb_bytes_ = 0;
  pending_.clear();
  rdb_done_ = false;
  paused_ = false;
  started_ns_ = uv_hrtime();
  return true;
}

void Checkpointer::history_data(std::string_view rdb_bytes) {
  if (kind_ != Kind::history || phase_ != Phase::receiving) return;
  take_rdb(rdb_bytes);
}

void Checkpointer::history_complete() {
  if (kind_ != Kind::history || phase_ != Phase::receiving) return;
  rdb_done_ = true;
  pump();
}

void Checkpointer::history_finished(bool ok, const std::string& why) {
  HistoryResult r;
  r.ok = ok;
  r.at_commit = phase_ == Phase::committing;
  r.replid = replid_;
  r.offset = offset_;
  r.rdb_bytes = rdb_bytes_;
  if (ok) {
    // The MANIFEST names checkpoint C (the commit job): the log follows the
    // new history from C.
    log_->reset(replid_, offset_);
    r.commit_seconds = double(uv_hrtime() - commit_started_ns_) / 1e9;
  } else {
    epoch_.fetch_add(1);  // a queued job of this resync does nothing
    std::string().swap(pending_);
    if (!job_in_flight_) discard_writer();  // else job_done does it
    r.error = (r.at_commit ? "cannot commit the full resync's checkpoint (the log keeps its history): "
                           : "cannot store the full resync's checkpoint: ") + why;
  }
  phase_ = Phase::idle;
  kind_ = Kind::checkpoint;
  HistoryHooks hooks = std::move(hooks_);
  hooks_ = {};
  if (paused_ && hooks.resume) hooks.resume();  // nothing waits for the disk any more
  paused_ = false;
  if (hooks.done) hooks.done(r);
  maybe_finish_close();
}

}  // namespace dp
