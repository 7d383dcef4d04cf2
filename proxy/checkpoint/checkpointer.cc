#include "proxy/checkpoint/checkpointer.h"

#include <cassert>
#include <cstdio>
#include <ctime>

#include "proxy/admin/metrics.h"
#include "proxy/base/json.h"
#include "proxy/base/logger.h"
#include "proxy/upstream/connection_names.h"

namespace dp {

using admin::Metric;

namespace {

unsigned long long ull(uint64_t v) { return static_cast<unsigned long long>(v); }

}  // namespace

// One unit of disk work on libuv's pool: append `data` to the temp file, and
// for the last job also commit (fsync, rename, fsync dir, MANIFEST) + prune.
struct Checkpointer::Job {
  uv_work_t req{};
  Checkpointer* self = nullptr;
  uint64_t epoch = 0;
  bool commit = false;
  std::string data;
  // results, written by the pool thread, read in job_done on the loop
  bool ok = true;
  bool skipped = false;  // the checkpoint was dropped before the job ran
  std::string error;
  uint64_t size = 0;     // committed checkpoint's size
};

Checkpointer::Checkpointer(uv_loop_t* loop, CheckpointerOptions opts, log::DurableLog* log,
                           log::CheckpointStore* store, admin::Metrics* metrics, ReadyFn ready)
    : loop_(loop), opts_(std::move(opts)), log_(log), store_(store), metrics_(metrics),
      ready_(std::move(ready)), policy_(opts_.policy, uv_now(loop)) {
  uv_timer_init(loop_, &reap_);
  reap_.data = this;
  if (auto cp = store_->latest()) {
    metrics_->set(Metric::checkpoint_offset, double(cp->offset));
    metrics_->set(Metric::checkpoint_bytes, double(cp->size));
  }
}

Checkpointer::~Checkpointer() {
  assert(life_.closed() && "Checkpointer destroyed before close() completed");
}

const char* Checkpointer::phase_name(Phase p) {
  switch (p) {
    case Phase::idle: return "idle";
    case Phase::connecting: return "connecting";
    case Phase::receiving: return "receiving_rdb";
    case Phase::waiting_log: return "waiting_for_log";
    case Phase::committing: return "committing";
  }
  return "?";
}

uint64_t Checkpointer::log_bytes_since_checkpoint() const {
  const uint64_t end = log_->end_offset(), start = log_->start_offset();
  return end > start ? end - start : 0;
}

// ---------------------------------------------------------------- triggers

Checkpointer::Answer Checkpointer::request(const std::string& trigger, std::string* message) {
  std::string why;
  if (!life_.open()) {
    *message = "not ready: the proxy is shutting down";
    return Answer::not_ready;
  }
  if (!ready_(&why)) {
    *message = "not ready: " + why;
    return Answer::not_ready;
  }
  if (running()) {
    *message = phase_ == Phase::idle
                   ? std::string("the previous checkpoint is still finishing its disk work")
                   : "a checkpoint is already running (" + std::string(phase_name(phase_)) +
                         ", started by " + trigger_ +
                         (phase_ == Phase::connecting ? std::string()
                                                      : ", offset " + std::to_string(offset_)) +
                         ", " + std::to_string(rdb_bytes_) + " snapshot bytes received)";
    return Answer::busy;
  }
  *message = "checkpoint started: PSYNC ? -1 on a second replica connection to " +
             opts_.link.host + ":" + std::to_string(opts_.link.port) + " (log ends at offset " +
             std::to_string(log_->end_offset()) + ", " +
             std::to_string(log_bytes_since_checkpoint()) + " bytes since the last checkpoint)";
  start(trigger);
  return Answer::started;
}

void Checkpointer::tick() {
  if (!life_.open()) return;
  if (auto cp = store_->latest()) {  // also after the main link's own full sync
    metrics_->set(Metric::checkpoint_offset, double(cp->offset));
    metrics_->set(Metric::checkpoint_bytes, double(cp->size));
  }
  if (phase_ == Phase::waiting_log) try_publish();
  if (running()) return;
  std::string why;
  if (!ready_(&why)) return;
  std::string due = policy_.due(uv_now(loop_), log_bytes_since_checkpoint());
  if (!due.empty()) start(due);
}

void Checkpointer::start(const std::string& trigger) {
  epoch_.fetch_add(1);
  phase_ = Phase::connecting;
  trigger_ = trigger;
  replid_.clear();
  offset_ = 0;
  rdb_bytes_ = 0;
  pending_.clear();
  rdb_done_ = false;
  paused_ = false;
  started_ns_ = uv_hrtime();
  upstream::ReplicaLinkOptions lo = opts_.link;
  lo.client_name = kCheckpointLinkName;
  lo.listening_port = 0;  // not a replica anyone should connect to
  // The link asks INFO server: Valkey 9.x needs REPLCONF version on this
  // link too, or its RDB cannot hold hash fields with TTLs.
  link_ = std::make_unique<upstream::ReplicaLink>(loop_, lo, static_cast<upstream::ReplicaLink::Listener*>(this));
  metrics_->set(Metric::checkpoint_in_progress, 1);
  LOG_INFO("checkpoint", "starting (%s): PSYNC ? -1 on a second connection to %s:%u; log %llu..%llu",
           trigger.c_str(), opts_.link.host.c_str(), static_cast<unsigned>(opts_.link.port),
           ull(log_->start_offset()), ull(log_->end_offset()));
  link_->start("", 0);
}

// ---------------------------------------------------------------- the second replica link

void Checkpointer::on_full_resync(const std::string& replid, uint64_t offset) {
  if (kind_ != Kind::checkpoint || phase_ != Phase::connecting) return;
  replid_ = replid;
  offset_ = offset;
  std::string why;
  if (check_publish(replid, offset, log_->replid(), log_->start_offset(), UINT64_MAX, &why) ==
      PublishCheck::discard) {
    return fail(why);
  }
  std::string error;
  {
    std::lock_guard<std::mutex> g(store_mu_);  // no job is in flight while connecting
    writer_ = store_->begin(replid, offset, &error);
  }
  if (!writer_) return fail(error);
  phase_ = Phase::receiving;
  LOG_INFO("checkpoint", "upstream answered +FULLRESYNC %s %llu; receiving its snapshot", replid.c_str(),
           ull(offset));
}

void Checkpointer::on_rdb_data(std::string_view bytes) {
  if (kind_ != Kind::checkpoint || phase_ != Phase::receiving) return;
  take_rdb(bytes);
}

void Checkpointer::take_rdb(std::string_view bytes) {
  pending_.append(bytes);
  rdb_bytes_ += bytes.size();
  if (pending_.size() >= opts_.max_buffered_bytes) {
    // Every time (idempotent): the proxy's log backpressure may have resumed the main link.
    paused_ = true;
    if (kind_ == Kind::history && hooks_.pause) hooks_.pause();
    else if (link_) link_->pause();
  }
  pump();
}

void Checkpointer::on_rdb_done() {
  if (kind_ != Kind::checkpoint || phase_ != Phase::receiving) return;
  rdb_done_ = true;
  // The stream that follows is the main link's business.
  retire_link();
  LOG_INFO("checkpoint", "snapshot at offset %llu received: %llu bytes in %.2f s", ull(offset_),
           ull(rdb_bytes_), double(uv_hrtime() - started_ns_) / 1e9);
  pump();
}

void Checkpointer::on_continue(const std::string&) {
  if (kind_ != Kind::checkpoint) return;
  fail("the upstream answered PSYNC ? -1 with +CONTINUE instead of a full resync");
}

void Checkpointer::on_stream(std::string_view, uint64_t) {}  // never reached: closed after the RDB

void Checkpointer::on_state(upstream::LinkState state, const std::string& reason) {
  if (state != upstream::LinkState::disconnected || kind_ != Kind::checkpoint) return;
  if (phase_ == Phase::connecting || (phase_ == Phase::receiving && !rdb_done_))
    fail("replica connection lost: " + reason);
}

// ---------------------------------------------------------------- disk work

void Checkpointer::pump() {
  if (phase_ != Phase::receiving || job_in_flight_) return;
  if (!rdb_done_) {
    if (pending_.size() >= opts_.write_chunk_bytes) {
      std::string chunk;
      chunk.swap(pending_);
      queue_job(false, std::move(chunk));
    }
    return;
  }
  try_publish();
}

void Checkpointer::try_publish() {
  if (kind_ == Kind::history) {  // the log restarts at C: nothing to wait for
    phase_ = Phase::committing;
    commit_started_ns_ = uv_hrtime();
    std::string rest;
    rest.swap(pending_);
    queue_job(true, std::move(rest));
    return;
  }
  if (log_->failed()) return fail("the durable log failed: " + log_->failure_reason());
  std::string why;
  PublishCheck check =
      check_publish(replid_, offset_, log_->replid(), log_->start_offset(), log_->durable_offset(), &why);
  // Not while the proxy is unready (upstream lost, restore running): a
  // restore reads the newest checkpoint, which publishing would prune.
  std::string unready;
  if (check == PublishCheck::publish && !ready_(&unready)) {
    check = PublishCheck::wait;
    why = "waiting for the proxy to be ready before publishing checkpoint " + std::to_string(offset_) +
          ": " + unready;
  }
  switch (check) {
    case PublishCheck::discard:
      return fail(why);
    case PublishCheck::publish: {
      phase_ = Phase::committing;
      std::string rest;
      rest.swap(pending_);
      queue_job(true, std::move(rest));
      return;
    }
    case PublishCheck::wait: {
      const uint64_t now = uv_now(loop_);
      if (phase_ != Phase::waiting_log) {
        phase_ = Phase::waiting_log;
        wait_deadline_ms_ = now + opts_.log_wait_ms;
        LOG_INFO("checkpoint", "%s", why.c_str());
      } else if (now >= wait_deadline_ms_) {
        fail("gave up after " + std::to_string(opts_.log_wait_ms) + " ms " + why);
      }
      return;
    }
  }
}

void Checkpointer::queue_job(bool commit, std::string data) {
  auto* job = new Job;
  job->req.data = job;
  job->self = this;
  job->epoch = epoch_.load();
  job->commit = commit;
  job->data = std::move(data);
  job_in_flight_ = true;
  int rc = uv_queue_work(loop_, &job->req, &Checkpointer::run_job, &Checkpointer::job_done);
  if (rc != 0) {
    delete job;
    job_in_flight_ = false;
    fail(std::string("cannot queue disk work on libuv's thread pool: ") + uv_strerror(rc));
  }
}

void Checkpointer::run_job(uv_work_t* req) {
  auto* job = static_cast<Job*>(req->data);
  Checkpointer* self = job->self;
  std::lock_guard<std::mutex> g(self->store_mu_);
  if (job->epoch != self->epoch_.load() || !self->writer_) {
    job->skipped = true;
    return;
  }
  auto failed = [&] {
    job->ok = false;
    self->writer_.reset();  // removes the temp file
  };
  if (!job->data.empty() && !self->writer_->write(job->data, &job->error)) return failed();
  std::string().swap(job->data);
  if (!job->commit) return;
  if (!self->writer_->commit(&job->error)) return failed();
  self->writer_.reset();
  self->store_->prune();
  if (auto cp = self->store_->latest()) job->size = cp->size;
}

void Checkpointer::job_done(uv_work_t* req, int status) {
  std::unique_ptr<Job> job(static_cast<Job*>(req->data));
  Checkpointer* self = job->self;
  self->job_in_flight_ = false;
  if (job->skipped || job->epoch != self->epoch_.load() || status == UV_ECANCELED) {
    // Dropped meanwhile (fail/abandon): phase_ is idle and nothing else
    // runs, or the main link's resync began and waits for this job to end.
    if (self->phase_ == Phase::idle) self->discard_writer();
    else self->pump();
    self->maybe_finish_close();
    return;
  }
  if (!job->ok) return self->fail(job->error);
  if (job->commit) {
    if (self->kind_ == Kind::checkpoint) self->last_bytes_ = job->size;
    return self->finished();
  }
  if (self->paused_ && self->pending_.size() < self->opts_.max_buffered_bytes / 2) {
    self->paused_ = false;
    if (self->kind_ == Kind::history && self->hooks_.resume) self->hooks_.resume();
    else if (self->link_) self->link_->resume();
  }
  self->pump();
}

void Checkpointer::finished() {
  if (kind_ == Kind::history) return history_finished(true, "");
  const double secs = double(uv_hrtime() - started_ns_) / 1e9;
  // The MANIFEST names checkpoint C and the log is durable up to C (checked
  // before the commit job): segments wholly below C are no longer needed.
  log_->drop_below(offset_);
  phase_ = Phase::idle;
  completed_++;
  last_offset_ = offset_;
  last_seconds_ = secs;
  last_error_.clear();
  policy_.succeeded(uv_now(loop_));
  metrics_->inc(Metric::checkpoints_total);
  metrics_->observe(Metric::checkpoint_seconds, secs);
  metrics_->set(Metric::checkpoint_offset, double(offset_));
  metrics_->set(Metric::checkpoint_bytes, double(last_bytes_));
  metrics_->set(Metric::checkpoint_timestamp, double(std::time(nullptr)));
  metrics_->set(Metric::checkpoint_in_progress, 0);
  LOG_INFO("checkpoint", "checkpoint at offset %llu complete (%s): %llu bytes in %.2f s; "
           "older segments and checkpoints removed",
           ull(offset_), trigger_.c_str(), ull(last_bytes_), secs);
  maybe_finish_close();
}

void Checkpointer::fail(const std::string& why) {
  if (phase_ == Phase::idle) return;
  if (kind_ == Kind::history) return history_finished(false, why);
  epoch_.fetch_add(1);  // a queued job of this checkpoint does nothing
  retire_link();
  phase_ = Phase::idle;
  std::string().swap(pending_);
  if (!job_in_flight_) discard_writer();  // else job_done does it
  failed_++;
  last_error_ = why;
  policy_.failed(uv_now(loop_));
  metrics_->inc(Metric::checkpoint_failures_total);
  metrics_->inc(Metric::errors_total, admin::ErrorCause::checkpoint);
  metrics_->set(Metric::checkpoint_in_progress, 0);
  LOG_WARN("checkpoint", "checkpoint (%s) failed: %s; the previous checkpoint stays in use", trigger_.c_str(),
           why.c_str());
  maybe_finish_close();
}

void Checkpointer::abandon(const std::string& why) {
  if (!running()) return;
  const bool was_running = phase_ != Phase::idle;
  epoch_.fetch_add(1);
  retire_link();
  phase_ = Phase::idle;
  std::string().swap(pending_);
  {
    // Waits for a pool job that is writing right now; later ones see the
    // new epoch and do nothing.
    std::lock_guard<std::mutex> g(store_mu_);
    writer_.reset();
  }
  const bool history = kind_ == Kind::history;  // the proxy says why itself
  kind_ = Kind::checkpoint;
  hooks_ = {};
  if (!was_running || history) return;
  failed_++;
  last_error_ = "abandoned: " + why;
  metrics_->inc(Metric::checkpoint_failures_total);
  metrics_->inc(Metric::errors_total, admin::ErrorCause::checkpoint);
  metrics_->set(Metric::checkpoint_in_progress, 0);
  LOG_WARN("checkpoint", "checkpoint (%s) abandoned: %s", trigger_.c_str(), why.c_str());
}

void Checkpointer::discard_writer() {
  std::lock_guard<std::mutex> g(store_mu_);
  writer_.reset();
}

// ---------------------------------------------------------------- connections and close

void Checkpointer::retire_link() {
  if (!link_) return;
  auto r = std::make_unique<Retired>();
  r->link = std::move(link_);
  Retired* rp = r.get();
  retired_.push_back(std::move(r));
  // Freed from a timer callback, never inside the link's own callback.
  rp->link->close([this, rp] {
    rp->closed = true;
    if (reap_open_) {
      uv_timer_start(&reap_, [](uv_timer_t* t) { static_cast<Checkpointer*>(t->data)->reap_links(); }, 0, 0);
    }
  });
}

void Checkpointer::reap_links() {
  std::erase_if(retired_, [](const std::unique_ptr<Retired>& r) { return r->closed; });
  maybe_finish_close();
}

void Checkpointer::close(std::function<void()> on_closed) {
  if (!life_.begin_close(std::move(on_closed))) return;
  abandon("the proxy is shutting down");
  maybe_finish_close();
}

void Checkpointer::maybe_finish_close() {
  if (!life_.closing() || job_in_flight_ || link_ || !retired_.empty() || !reap_open_) return;
  reap_open_ = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&reap_), [](uv_handle_t* h) {
    auto* self = static_cast<Checkpointer*>(h->data);
    self->life_.finish();
  });
}

std::string Checkpointer::status_json() const {
  std::string o = "{\"running\":";
  o += running() ? "true" : "false";
  o += ",\"phase\":" + json_quoted(phase_name(phase_));
  if (phase_ != Phase::idle) {
    o += ",\"trigger\":" + json_quoted(trigger_);
    if (phase_ != Phase::connecting) o += ",\"offset\":" + std::to_string(offset_);
    o += ",\"snapshot_bytes\":" + std::to_string(rdb_bytes_);
  }
  o += ",\"completed\":" + std::to_string(completed_) + ",\"failed\":" + std::to_string(failed_);
  o += ",\"log_bytes_since_checkpoint\":" + std::to_string(log_bytes_since_checkpoint());
  if (completed_ > 0) {
    char secs[32];
    std::snprintf(secs, sizeof secs, "%.3f", last_seconds_);
    o += ",\"last\":{\"offset\":" + std::to_string(last_offset_) + ",\"bytes\":" +
         std::to_string(last_bytes_) + ",\"seconds\":" + secs + "}";
  }
  if (!last_error_.empty()) o += ",\"last_error\":" + json_quoted(last_error_);
  return o + "}";
}

}  // namespace dp
