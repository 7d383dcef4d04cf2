// The recovery state machine's driver (proxy/recovery/recovery_state.h):
// the control connection, the command table, the recovery check and its
// decision, and the start of the main replica link.

#include <cstdio>
#include <fstream>

#include "proxy/app/proxy.h"
#include "proxy/base/logger.h"
#include "proxy/recovery/aof_restorer.h"
#include "proxy/recovery/recovery_plan.h"
#include "proxy/resp/value.h"
#include "proxy/upstream/connection_names.h"
#include "proxy/upstream/upstream_info.h"

namespace dp {

namespace {


}  // namespace

void Proxy::control_up() {
  control_backoff_ms_ = 100;
  control_gen_++;
  LOG_INFO("control", "connected to upstream %s", cfg_.upstream.str().c_str());
  load_command_table();
}

void Proxy::control_down(const std::string& reason) {
  if (stopping()) return;
  LOG_WARN("control", "%s; retrying in %llu ms", reason.c_str(), static_cast<unsigned long long>(control_backoff_ms_));
  metrics_.inc(admin::Metric::upstream_reconnects_total);
  metrics_.inc(admin::Metric::errors_total, admin::ErrorCause::upstream_io);
  hold_since_ms_.reset();
  ctx_.upstream_run_id.clear();
  if (restorer_) restorer_->abort("control connection lost: " + reason);
  enter(recovery::State::starting, "control connection lost: " + reason);
  set_serving(false, "upstream " + cfg_.upstream.str() + " unavailable: " + reason);
  control_retry_at_ = uv_now(&loop_) + control_backoff_ms_;
  control_backoff_ms_ = std::min<uint64_t>(control_backoff_ms_ * 2, 5000);
}

void Proxy::load_command_table() {
  control_->command({"COMMAND"}, [this](const resp::Value* r, const std::string& err) {
    if (!r) return;  // link dropped; control_down handles it
    commands::TableOptions to;
    to.trust_script_keys = cfg_.trust_script_keys;
    std::string error;
    std::unique_ptr<commands::CommandTable> table;
    if (r->type == resp::Value::Type::array) table = commands::CommandTable::from_command_reply(*r, to, &error);
    else error = r->type == resp::Value::Type::error ? r->str : "unexpected reply type";
    if (!table) {
      LOG_WARN("control", "cannot read COMMAND from upstream %s (%s): every unknown command is treated as a write",
               cfg_.upstream.str().c_str(), error.c_str());
      table = commands::CommandTable::builtin(to);
    }
    LOG_INFO("control", "command table: %zu commands", table->size());
    ctx_.table = std::shared_ptr<const commands::CommandTable>(std::move(table));
    if (tracker_) tracker_->set_table(ctx_.table);
    (void)err;
    if (gate_)
      for (uint64_t id : gate_->unanswered_probes()) send_probe(id);
    check_recovery();
    if (gate_) check_sync_delay();
  });
}

// A diskless primary waits repl-diskless-sync-delay seconds (5 by default)
// before the RDB child of a full sync starts, for more replicas to join; a
// replica cannot ask for less (replication.c: only repl-diskless-sync-max-
// replicas, checked by the 1 Hz cron, or no "capa eof", i.e. an RDB file on
// the upstream's disk, start it sooner).  The first start and every
// checkpoint pay it, so say so once per control connection.
void Proxy::check_sync_delay() {
  control_->command({"CONFIG", "GET", "repl-diskless-sync*"}, [this](const resp::Value* r, const std::string&) {
    if (!r || r->type != resp::Value::Type::array) return;  // e.g. CONFIG denied by an ACL: nothing to say
    std::string diskless, delay;
    for (size_t i = 0; i + 1 < r->elems.size(); i += 2) {
      const resp::Value* k = &r->elems[i];
      const resp::Value* v = &r->elems[i + 1];
      if (k->type != resp::Value::Type::bulk || v->type != resp::Value::Type::bulk) continue;
      const std::string& name = k->str;
      if (name == "repl-diskless-sync") diskless = v->str;
      if (name == "repl-diskless-sync-delay") delay = v->str;
    }
    if (diskless == "yes" && !delay.empty() && delay != "0")
      LOG_WARN("control", "upstream %s has repl-diskless-sync-delay %s: the proxy's first full sync and every "
               "checkpoint wait %s s before the upstream starts sending; set it to 0 (deploy/valkey.conf)",
               cfg_.upstream.str().c_str(), delay.c_str(), delay.c_str());
  });
}

void Proxy::enter(recovery::State next, const std::string& why) {
  if (next == state_) return;
  if (!recovery::transition_allowed(state_, next))
    LOG_WARN("recovery", "unexpected move %s -> %s (%s)", recovery::to_string(state_), recovery::to_string(next),
             why.c_str());
  LOG_INFO("recovery", "%s -> %s: %s", recovery::to_string(state_), recovery::to_string(next), why.c_str());
  state_ = next;
  // Offsets answered now belong to the history the log follows only while
  // serving (as send_probe's answers): shared connections' ROLEs too.
  ctx_.offsets_follow_log = state_ == recovery::State::serving;
}

void Proxy::check_recovery() {
  if (!gate_) {
    enter(recovery::State::serving, "durability is off: nothing to recover");
    set_serving(true, "");
    return;
  }
  if (state_ == recovery::State::checking || state_ == recovery::State::clearing || restorer_) return;
  // This check answers any retry that was pending (a link drop during a
  // control reconnect would otherwise re-check a healthy upstream later).
  link_retry_at_ = 0;
  if (state_ == recovery::State::serving) return;  // verified and streaming: nothing to decide
  if (checkpointer_ && checkpointer_->history_committing()) {
    // The log is about to follow the resync's history: decide from that.
    link_retry_at_ = uv_now(&loop_) + 20;
    return;
  }
  ask_upstream(false);
}

void Proxy::ask_upstream(bool leftover_checked) {
  link_retry_at_ = 0;
  enter(recovery::State::checking, "asking upstream " + cfg_.upstream.str() + " for its replication state");
  // The log end when INFO is sent: every logged byte came from the upstream,
  // so an upstream that still has our history answers an offset >= this.
  // The log end when the answer arrives may be larger (the stream kept
  // flowing) and must not be compared with the older INFO offset.
  const uint64_t end_at_request = log_->end_offset();
  // INFO cluster's cluster_enabled: a cluster replica is never restored.
  // INFO server's run_id: which process the shared connections must reach
  // for their ROLE answers to count (session/shared_upstream.h).
  control_->command({"INFO", "replication", "cluster", "server"}, [this, end_at_request, leftover_checked](
                                                             const resp::Value* r, const std::string&) {
    if (!r) return;  // control_down moved to starting
    if (r->type != resp::Value::Type::bulk) return recheck_later("INFO replication", r);
    control_->command({"INFO", "keyspace"}, [this, end_at_request, leftover_checked,
                                             repl = r->str](const resp::Value* k, const std::string&) {
      if (!k) return;
      if (k->type != resp::Value::Type::bulk) return recheck_later("INFO keyspace", k);
      upstream::UpstreamInfo up = upstream::parse_upstream_info(repl, k->str);
      if (!up.parsed) return recheck_later("INFO replication (no role: field)", nullptr);
      if (!up.cluster_enabled) return decide(up, end_at_request, leftover_checked);
      // A cluster node: which one (a restore goes only into the node the log came from).
      control_->command({"CLUSTER", "MYID"}, [this, end_at_request, leftover_checked, up](const resp::Value* m,
                                                                                         const std::string&) mutable {
        if (!m) return;
        if (m->type == resp::Value::Type::bulk) up.node_id = m->str;
        else
          LOG_WARN("recovery", "CLUSTER MYID to upstream %s got %s: the node's id is not checked before a restore",
                   cfg_.upstream.str().c_str(), m->str.c_str());
        decide(up, end_at_request, leftover_checked);
      });
    });
  });
}

// An upstream that cannot answer INFO right now (-BUSY while a script runs
// past its time limit, -LOADING, an ACL error) tells nothing about its data:
// an error taken as empty text would read as "lost everything, holds no
// keys" and start a restore over a live dataset.  Decide nothing; ask again.
void Proxy::recheck_later(const char* what, const resp::Value* r) {
  std::string answer = r && (r->type == resp::Value::Type::error || r->type == resp::Value::Type::simple)
                           ? r->str
                           : "an answer that is not text";
  LOG_WARN("recovery", "%s to upstream %s got %s; deciding nothing, asking again in %llu ms", what,
           cfg_.upstream.str().c_str(), answer.c_str(), static_cast<unsigned long long>(link_backoff_ms_));
  enter(recovery::State::waiting, std::string(what) + " not answered");
  link_retry_at_ = uv_now(&loop_) + link_backoff_ms_;
  link_backoff_ms_ = std::min<uint64_t>(link_backoff_ms_ * 2, 5000);
}

void Proxy::decide(const upstream::UpstreamInfo& up, uint64_t end_at_request, bool leftover_checked) {
  if (up.role == "slave" && !leftover_checked) return clear_leftover_restore();  // proxy_restore.cc
  ctx_.upstream_run_id = up.run_id;
  const std::string ours = log_->replid();
  const uint64_t end = log_->end_offset();
  const std::string node_id_path = cfg_.log_dir + "/" + kClusterNodeIdFile;
  std::string log_node_id;
  if (std::ifstream in(node_id_path); in) std::getline(in, log_node_id);
  recovery::RecoveryPlan plan = recovery::plan_recovery(ours, std::min(end, end_at_request), up, cfg_.on_unknown_dataset,
                                                       aof_restore_marked(cfg_.log_dir, up.run_id), log_node_id);
  // The log now follows (or becomes) this node's data: remember which node.
  const bool follows = plan.action == recovery::RecoveryAction::resume ||
                       plan.action == recovery::RecoveryAction::fresh || plan.action == recovery::RecoveryAction::adopt;
  if (follows && !up.node_id.empty() && up.node_id != log_node_id) {
    if (std::string e = write_cluster_node_id(cfg_.log_dir, up.node_id); !e.empty())
      LOG_WARN("recovery", "%s: the cluster node id is not checked before a restore", e.c_str());
  }
  LOG_INFO("recovery", "%s", plan.explanation.c_str());
  if (plan.action != recovery::RecoveryAction::resume && hold_since_ms_) {
    // Only a continued stream proves the held sessions' data; anything else
    // (a full resync, a restore, a refusal) ends the hold.
    hold_since_ms_.reset();
    set_serving(false, plan.explanation);
  }
  switch (plan.action) {
    case recovery::RecoveryAction::fresh:
    case recovery::RecoveryAction::adopt:
      // Another dataset: offsets of the old history say nothing of it.
      foreign_history_ = true;
      if (plan.resync_replicas) {
        // A cluster restore that stopped after its load: its replicas may
        // still hold the empty dataset under the same replid.
        enter(recovery::State::checking, "making the restored node's replicas resync");
        control_->command({"DEBUG", "CHANGE-REPL-ID"}, [this](const resp::Value* r, const std::string&) {
          if (!r) return;  // control_down moved to starting
          control_->command({"CLIENT", "KILL", "TYPE", "replica"}, [this, r](const resp::Value* k, const std::string&) {
            if (!k) return;
            if (r->type == resp::Value::Type::error || k->type == resp::Value::Type::error) {
              const std::string why = "cannot make the restored node's replicas resync (DEBUG CHANGE-REPL-ID: " +
                                      (r->type == resp::Value::Type::error ? r->str : std::string("OK")) +
                                      ", CLIENT KILL TYPE replica: " +
                                      (k->type == resp::Value::Type::error ? k->str : std::string("OK")) + ")";
              LOG_ERROR("recovery", "%s; asking again", why.c_str());
              enter(recovery::State::waiting, why);
              set_serving(false, why);
              link_retry_at_ = uv_now(&loop_) + 5000;
              return;
            }
            start_replica_link("", 0);
          });
        });
        break;
      }
      start_replica_link("", 0);
      break;
    case recovery::RecoveryAction::resume:
      start_replica_link(ours, end);
      break;
    case recovery::RecoveryAction::restore:
      start_restore(plan);
      break;
    case recovery::RecoveryAction::refuse:
      // Lasts only until the next decision (tick() asks again every 5 s):
      // the operator may wipe or fix the upstream.
      enter(recovery::State::refused, "unknown dataset, recovery.on_unknown_dataset is 'refuse'");
      set_serving(false, plan.explanation);
      LOG_ERROR("recovery", "%s", plan.explanation.c_str());
      break;
  }
}

void Proxy::start_replica_link(const std::string& replid, uint64_t offset) {
  if (!link_) {
    upstream::ReplicaLinkOptions lo;
    lo.host = cfg_.upstream.host;
    lo.port = cfg_.upstream.port;
    lo.username = cfg_.upstream_username;
    lo.password = cfg_.upstream_password;
    lo.listening_port = cfg_.listen.port;
    lo.connect_timeout_ms = cfg_.connect_timeout_ms;
    lo.client_name = kReplicaLinkName;
    link_ = std::make_unique<upstream::ReplicaLink>(&loop_, lo, this);
  }
  enter(recovery::State::syncing, replid.empty() ? std::string("PSYNC ? -1 (a new history)")
                                                 : "PSYNC " + replid + " " + std::to_string(offset + 1));
  link_->durable(log_->durable_offset());
  link_->start(replid, offset);
}

}  // namespace dp
