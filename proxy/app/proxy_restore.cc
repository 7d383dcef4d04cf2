// The proxy's side of a restore (DESIGN.md §6 step 3): when to start one,
// what it is given (newest checkpoint + durable log), and what follows it
// (PSYNC to continue, or a retry with backoff).  Never serves meanwhile.

#include "proxy/base/logger.h"
#include "proxy/app/proxy.h"
#include "proxy/recovery/aof_restorer.h"
#include "proxy/session/session.h"

namespace dp {

void Proxy::start_restore(const recovery::RecoveryPlan& plan) {  // decide() logged the plan
  if (restorer_) return;
  auto retry_later = [this](const std::string& why, uint64_t delay_ms) {
    enter(recovery::State::waiting, why);
    set_serving(false, why);
    link_retry_at_ = uv_now(&loop_) + delay_ms;  // tick() runs check_recovery() again
  };
  if (ctx_.log_failed)
    return retry_later("restore needed but the durable log failed (" + ctx_.log_failure + "); restart the proxy", 5000);
  if (restores_closing_ > 0)  // a failed restore's file work still runs (it writes the same files)
    return retry_later("restore needed: waiting for the previous attempt's file work to end", 20);
  // Restore exactly what is durable: wait for bytes still queued to the writer.
  if (log_->durable_offset() < log_->end_offset())
    return retry_later("restore needed: waiting for the log to fsync up to offset " +
                           std::to_string(log_->end_offset()),
                       20);
  auto cp = checkpoints_->latest();
  if (!cp) {
    std::string why = "restore needed (" + plan.explanation + ") but " + cfg_.log_dir +
                      "/checkpoints holds no checkpoint to restore from";
    LOG_ERROR("recovery", "%s", why.c_str());
    metrics_.inc(admin::Metric::errors_total, admin::ErrorCause::restore);
    return retry_later(why, 5000);
  }
  // Sessions may have run commands on the restarted upstream before the
  // loss was noticed; the restore overwrites them, so none may be acknowledged.
  std::vector<Session*> all;
  for (auto& [id, s] : sessions_) all.push_back(s);
  if (!all.empty()) LOG_WARN("recovery", "closing %zu client connections before the restore", all.size());
  for (Session* s : all) s->close("the upstream is being restored");
  metrics_.set(admin::Metric::restore_in_progress, 1);
  auto done = [this](const RestoreResult& r) { restore_finished(r); };
  if (plan.cluster) {
    // A cluster node refuses REPLICAOF: it loads the log as a multi-part AOF.
    AofRestoreOptions a;
    a.log_dir = cfg_.log_dir;
    a.end_offset = log_->end_offset();
    a.checkpoint_path = cp->path;
    a.checkpoint_offset = cp->offset;
    a.node_data_dir = cfg_.node_data_dir;
    a.node_run_id = ctx_.upstream_run_id;
    a.upstream_name = cfg_.upstream.str();
    a.on_status = [this](const std::string& status) { set_serving(false, status); };
    restorer_ = std::make_unique<AofRestorer>(&loop_, control_.get(), a, done);
  } else {
    RestoreOptions o;
    o.listen_host = cfg_.restore_listen.host;
    o.listen_port = cfg_.restore_listen.port;
    o.log_dir = cfg_.log_dir;
    o.replid = log_->replid();
    o.end_offset = log_->end_offset();
    o.checkpoint_path = cp->path;
    o.checkpoint_offset = cp->offset;
    o.checkpoint_bytes = cp->size;
    o.upstream_name = cfg_.upstream.str();
    o.on_status = [this](const std::string& status) { set_serving(false, status); };
    restorer_ = std::make_unique<Restorer>(&loop_, control_.get(), o, done);
  }
  enter(recovery::State::restoring, "restoring from checkpoint " + std::to_string(cp->offset) + " and the log up to " +
                                        std::to_string(log_->end_offset()));
  set_serving(false, restorer_->status());
  restorer_->start();
}

void Proxy::restore_finished(const RestoreResult& r) {
  metrics_.set(admin::Metric::restore_in_progress, 0);
  RestoreJob* done = restorer_.release();
  const bool new_history = done->new_history();
  ++restores_closing_;
  done->close([this, done] {
    delete done;
    --restores_closing_;
  });
  if (!r.ok) {
    metrics_.inc(admin::Metric::errors_total, admin::ErrorCause::restore);
    LOG_ERROR("recovery", "%s; retrying in %llu ms", r.error.c_str(), static_cast<unsigned long long>(link_backoff_ms_));
    enter(recovery::State::waiting, r.error);
    set_serving(false, r.error);
    link_retry_at_ = uv_now(&loop_) + link_backoff_ms_;
    link_backoff_ms_ = std::min<uint64_t>(link_backoff_ms_ * 2, 5000);
    return;
  }
  metrics_.inc(admin::Metric::restores_total);
  metrics_.observe(admin::Metric::restore_seconds, r.seconds);
  if (new_history)
    LOG_INFO("recovery", "restore of upstream %s done in %.2f s (%llu stream bytes loaded); taking the node's data as the "
             "log's new history", cfg_.upstream.str().c_str(), r.seconds, static_cast<unsigned long long>(r.bytes_sent));
  else
    LOG_INFO("recovery", "restore of upstream %s done in %.2f s (%llu bytes sent, upstream at offset %llu); resuming the "
             "replication stream", cfg_.upstream.str().c_str(), r.seconds,
             static_cast<unsigned long long>(r.bytes_sent), static_cast<unsigned long long>(r.reached));
  if (new_history) {
    // The node holds the log's data under its own replid: the log takes it
    // as a new history (the old one goes once the new checkpoint is durable).
    set_serving(false, "restore done; taking the node's restored data as the log's new history");
    foreign_history_ = true;
    return start_replica_link("", 0);
  }
  set_serving(false, "restore done; resuming the replication stream from the upstream " + cfg_.upstream.str());
  start_replica_link(log_->replid(), log_->end_offset());
}

// The upstream is a replica.  If it follows a restore listener of a proxy
// that died mid-restore (its masterauth is still a one-time password),
// promote it and put masterauth back, then check again from the start;
// otherwise check again and decide from its replication state as it is.
void Proxy::clear_leftover_restore() {
  enter(recovery::State::clearing, "upstream " + cfg_.upstream.str() + " is a replica: is it an earlier run's restore?");
  control_->command({"CONFIG", "GET", "masterauth"}, [this](const resp::Value* r, const std::string&) {
    if (!r) return;  // control_down moved to starting
    bool ours = r->type == resp::Value::Type::array && r->elems.size() == 2 &&
                r->elems[1].type == resp::Value::Type::bulk &&
                r->elems[1].str.rfind(Restorer::kPasswordPrefix, 0) == 0;
    if (!ours) {
      LOG_WARN("recovery", "upstream %s is a replica of another server; deciding from its replication state",
               cfg_.upstream.str().c_str());
      ask_upstream(/*leftover_checked=*/true);
      return;
    }
    LOG_WARN("recovery", "upstream %s still follows the restore listener of an earlier run (the proxy stopped "
             "mid-restore): REPLICAOF NO ONE, masterauth cleared", cfg_.upstream.str().c_str());
    control_->command({"REPLICAOF", "NO", "ONE"}, [this](const resp::Value* r2, const std::string&) {
      if (!r2) return;
      control_->command({"CONFIG", "SET", "masterauth", ""}, [this](const resp::Value* r3, const std::string&) {
        if (!r3) return;
        ask_upstream(/*leftover_checked=*/false);
      });
    });
  });
}

}  // namespace dp
