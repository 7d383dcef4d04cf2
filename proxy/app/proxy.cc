#include "proxy/app/proxy.h"

#include <hiredis/hiredis.h>
#include <netdb.h>

#include <csignal>
#include <cstring>

#include "proxy/base/logger.h"
#include "proxy/resp/value.h"
#include "proxy/session/session.h"
#include "proxy/upstream/connection_names.h"
#include "proxy/upstream/upstream_info.h"

namespace dp {

namespace {

constexpr size_t kSharedReadBuf = 256 * 1024;
constexpr uint64_t kTickMs = 100;

resp::Value to_value(const redisReply* r) {
  resp::Value v;
  switch (r->type) {
    case REDIS_REPLY_STRING: v.type = resp::Value::Type::bulk; v.str.assign(r->str, r->len); break;
    case REDIS_REPLY_STATUS: v.type = resp::Value::Type::simple; v.str.assign(r->str, r->len); break;
    case REDIS_REPLY_ERROR: v.type = resp::Value::Type::error; v.str.assign(r->str, r->len); break;
    case REDIS_REPLY_INTEGER: v.type = resp::Value::Type::integer; v.integer = r->integer; break;
    case REDIS_REPLY_ARRAY:
      v.type = resp::Value::Type::array;
      v.elems.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) v.elems.push_back(to_value(r->element[i]));
      break;
    default: v.type = resp::Value::Type::null; break;
  }
  return v;
}

bool resolve(const config::HostPort& hp, sockaddr_storage* out, std::string* error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port = std::to_string(hp.port);
  int rc = getaddrinfo(hp.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0 || !res) {
    *error = "cannot resolve " + hp.str() + ": " + gai_strerror(rc);
    return false;
  }
  std::memcpy(out, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  return true;
}

}  // namespace

Proxy::Proxy(config::Config cfg) : cfg_(std::move(cfg)) {}

Proxy::~Proxy() {
  // Sessions and handles are gone once run() returned; the log's destructor
  // does the final fsync.
  history_.reset();
  checkpointer_.reset();
  link_.reset();
  control_.reset();
  admin_.reset();
  log_.reset();
  uv_loop_close(&loop_);
}

bool Proxy::start(std::string* error) {
  uv_loop_init(&loop_);
  ctx_.loop = &loop_;
  ctx_.cfg = &cfg_;
  ctx_.metrics = &metrics_;
  ctx_.limits.max_bulk_len = cfg_.max_bulk_len;
  ctx_.limits.max_inline_len = cfg_.max_inline_len;
  ctx_.limits.max_multibulk_len = cfg_.max_multibulk_len;
  ctx_.upstream_name = cfg_.upstream.str();
  read_buf_.reset(new char[kSharedReadBuf]);
  ctx_.read_buf = read_buf_.get();
  ctx_.read_buf_size = kSharedReadBuf;
  ctx_.info_durability = [this] { return info_durability(); };
  ctx_.session_closed = [this](Session* s) {
    sessions_.erase(s->id());
    ctx_.clients = sessions_.size();
  };
  ctx_.held_bytes_dropped = [this] {
    for (auto& [id, s] : sessions_) s->maybe_resume();
  };
  set_serving(false, "connecting to upstream " + cfg_.upstream.str());
  if (!resolve(cfg_.upstream, &ctx_.upstream_addr, error)) return false;

  uv_async_init(&loop_, &durable_async_, &Proxy::on_durable_async);
  durable_async_.data = this;

  if (cfg_.durability == config::DurabilityMode::always) {
    checkpoints_ = log::CheckpointStore::open(cfg_.log_dir, error);
    if (!checkpoints_) return false;
    log::LogOptions lo;
    lo.dir = cfg_.log_dir;
    lo.checkpoint_dir = cfg_.log_dir;
    lo.segment_bytes = cfg_.segment_bytes;
    lo.commit_delay_us = cfg_.commit_delay_us;
    lo.fsync_overlap = cfg_.fsync_overlap;
    lo.on_durable = [this] { uv_async_send(&durable_async_); };
    lo.on_commit = [this](uint64_t ns, uint64_t bytes) {  // committer threads, maybe two at once
      fsync_seconds_.observe(static_cast<double>(ns) / 1e9);
      fsync_batch_bytes_.observe(static_cast<double>(bytes));
    };
    log_ = log::DurableLog::open(lo, error);
    if (!log_) return false;
    const log::RecoveryInfo& ri = log_->recovery();
    LOG_INFO("log", "recovered %s: replid %s, offsets %llu..%llu%s%s", cfg_.log_dir.c_str(),
             ri.replid.empty() ? "(none)" : ri.replid.c_str(), static_cast<unsigned long long>(ri.start_offset),
             static_cast<unsigned long long>(ri.end_offset), ri.note.empty() ? "" : "; ", ri.note.c_str());
    gate_ = std::make_unique<gate::DurabilityGate>(
        [this](uint64_t id) { send_probe(id); },
        [this](uint64_t id) -> gate::GateClient* {
          auto it = sessions_.find(id);
          return it == sessions_.end() ? nullptr : it->second;
        });
    gate_->durable(log_->durable_offset());
    ctx_.gate = gate_.get();
    tracker_ = std::make_unique<StreamTracker>(&gate_->pending(), [this] {
      if (link_) link_->ack_now();
    });
    checkpointer_ = make_checkpointer();
  }

  uv_tcp_init(&loop_, &listener_);
  listener_.data = this;
  sockaddr_storage addr{};
  if (!resolve(cfg_.listen, &addr, error)) return false;
  int rc = uv_tcp_bind(&listener_, reinterpret_cast<const sockaddr*>(&addr), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 1024, &Proxy::on_accept);
  if (rc != 0) {
    *error = "cannot listen on " + cfg_.listen.str() + " (listen): " + uv_strerror(rc);
    return false;
  }
  listening_ = true;

  if (cfg_.admin_enabled) {
    admin::AdminOptions ao;
    ao.host = cfg_.admin.host;
    ao.port = cfg_.admin.port;
    ao.token = cfg_.admin_token;
    ao.on_answer = [this](int status) {
      metrics_.inc(admin::Metric::admin_requests_total);
      if (status >= 400 && status < 500) metrics_.inc(admin::Metric::errors_total, admin::ErrorCause::admin_request);
    };
    admin::AdminHandlers h;
    h.metrics = [this] {
      refresh_metrics();
      return metrics_.render();
    };
    h.ready = [this](std::string* reason) { return ready(reason); };
    h.status_json = [this] { return status_json(); };
    h.checkpoint = [this](std::string* message) { return checkpoint_request(message); };
    admin_ = std::make_unique<admin::AdminServer>(&loop_, ao, std::move(h));
    if (!admin_->start(error)) {
      *error = "admin (admin.address): " + *error;
      return false;
    }
  }

  uv_timer_init(&loop_, &tick_);
  tick_.data = this;
  uv_timer_start(&tick_, &Proxy::on_tick, kTickMs, kTickMs);
  uv_check_init(&loop_, &check_);
  check_.data = this;
  uv_check_start(&check_, &Proxy::on_check);
  for (auto [sig, h] : {std::pair{SIGTERM, &sigterm_}, std::pair{SIGINT, &sigint_}, std::pair{SIGHUP, &sighup_}}) {
    uv_signal_init(&loop_, h);
    h->data = this;
    uv_signal_start(h, &Proxy::on_signal, sig);
  }

  upstream::ControlLinkOptions co;
  co.host = cfg_.upstream.host;
  co.port = cfg_.upstream.port;
  co.username = cfg_.upstream_username;
  co.password = cfg_.upstream_password;
  co.connect_timeout_ms = cfg_.connect_timeout_ms;
  co.client_name = kControlLinkName;
  control_ = std::make_unique<upstream::ControlLink>(
      &loop_, co, [this] { control_up(); }, [this](const std::string& r) { control_down(r); });
  control_->connect();
  return true;
}

int Proxy::run() {
  std::string error;
  if (!start(&error)) {
    LOG_ERROR("proxy", "%s", error.c_str());
    if (uv_loop_alive(&loop_)) {
      begin_shutdown("start-up failed");
      uv_run(&loop_, UV_RUN_DEFAULT);
    }
    return 1;
  }
  LOG_INFO("proxy", "listening on %s, upstream %s, durability %s", cfg_.listen.str().c_str(),
           cfg_.upstream.str().c_str(), gate_ ? "always" : "off");
  uv_run(&loop_, UV_RUN_DEFAULT);
  if (!fatal_.empty()) return 1;
  return exit_code_;
}

// ---------------------------------------------------------------- clients

void Proxy::on_accept(uv_stream_t* server, int status) {
  auto* self = static_cast<Proxy*>(server->data);
  if (status < 0) {
    LOG_WARN("proxy", "accept on %s failed: %s", self->cfg_.listen.str().c_str(), uv_strerror(status));
    return;
  }
  uint64_t id = self->next_session_id_++;
  auto* s = new Session(&self->ctx_, id);
  self->sessions_[id] = s;
  self->ctx_.clients = self->sessions_.size();
  self->metrics_.inc(admin::Metric::clients_accepted_total);
  if (self->sessions_.size() > self->cfg_.max_clients) {
    self->metrics_.inc(admin::Metric::clients_rejected_total);
    // Accept and close at once: Valkey answers "-ERR max number of clients reached".
    s->accept(server);
    s->close("max clients");
    return;
  }
  s->accept(server);
}

// ---------------------------------------------------------------- upstream

void Proxy::control_up() {
  control_backoff_ms_ = 100;
  control_gen_++;
  LOG_INFO("control", "connected to upstream %s", cfg_.upstream.str().c_str());
  load_command_table();
}

void Proxy::control_down(const std::string& reason) {
  if (shutting_down_) return;
  LOG_WARN("control", "%s; retrying in %llu ms", reason.c_str(), static_cast<unsigned long long>(control_backoff_ms_));
  metrics_.inc(admin::Metric::upstream_reconnects_total);
  metrics_.inc(admin::Metric::errors_total, admin::ErrorCause::upstream_io);
  recovered_ = false;
  checking_ = false;
  holding_ = false;
  if (restorer_) restorer_->abort("control connection lost: " + reason);
  set_serving(false, "upstream " + cfg_.upstream.str() + " unavailable: " + reason);
  control_retry_at_ = uv_now(&loop_) + control_backoff_ms_;
  control_backoff_ms_ = std::min<uint64_t>(control_backoff_ms_ * 2, 5000);
}

void Proxy::load_command_table() {
  control_->command({"COMMAND"}, [this](const redisReply* r, const std::string& err) {
    if (!r) return;  // link dropped; control_down handles it
    commands::TableOptions to;
    to.trust_script_keys = cfg_.trust_script_keys;
    std::string error;
    std::unique_ptr<commands::CommandTable> table;
    if (r->type == REDIS_REPLY_ARRAY) table = commands::CommandTable::from_command_reply(to_value(r), to, &error);
    else error = r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len) : "unexpected reply type";
    if (!table) {
      LOG_WARN("control", "cannot read COMMAND from upstream %s (%s): every unknown command is treated as a write",
               cfg_.upstream.str().c_str(), error.c_str());
      table = commands::CommandTable::builtin(to);
    }
    LOG_INFO("control", "command table: %zu commands", table->size());
    ctx_.table = std::shared_ptr<const commands::CommandTable>(std::move(table));
    if (tracker_) tracker_->set_table(ctx_.table);
    table_loaded_ = true;
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
  control_->command({"CONFIG", "GET", "repl-diskless-sync*"}, [this](const redisReply* r, const std::string&) {
    if (!r || r->type != REDIS_REPLY_ARRAY) return;  // e.g. CONFIG denied by an ACL: nothing to say
    std::string diskless, delay;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
      const redisReply* k = r->element[i];
      const redisReply* v = r->element[i + 1];
      if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
      std::string name(k->str, k->len);
      if (name == "repl-diskless-sync") diskless.assign(v->str, v->len);
      if (name == "repl-diskless-sync-delay") delay.assign(v->str, v->len);
    }
    if (diskless == "yes" && !delay.empty() && delay != "0")
      LOG_WARN("control", "upstream %s has repl-diskless-sync-delay %s: the proxy's first full sync and every "
               "checkpoint wait %s s before the upstream starts sending; set it to 0 (deploy/valkey.conf)",
               cfg_.upstream.str().c_str(), delay.c_str(), delay.c_str());
  });
}

void Proxy::check_recovery() {
  if (!gate_) {
    recovered_ = true;
    set_serving(true, "");
    return;
  }
  if (checking_ || restorer_) return;
  // This check answers any retry that was pending (a link drop during a
  // control reconnect would otherwise re-check a healthy upstream later).
  link_retry_at_ = 0;
  if (recovered_ && link_streaming_) return;  // verified and streaming: nothing to decide
  checking_ = true;
  // The log end when INFO is sent: every logged byte came from the upstream,
  // so an upstream that still has our history answers an offset >= this.
  // The log end when the answer arrives may be larger (the stream kept
  // flowing) and must not be compared with the older INFO offset.
  const uint64_t end_at_request = log_->end_offset();
  control_->command({"INFO", "replication"}, [this, end_at_request](const redisReply* r, const std::string&) {
    if (!r) return;
    if (r->type != REDIS_REPLY_STRING) return recheck_later("INFO replication", r);
    control_->command({"INFO", "keyspace"}, [this, end_at_request, repl = std::string(r->str, r->len)](
                                              const redisReply* k, const std::string&) {
      checking_ = false;
      if (!k) return;
      if (k->type != REDIS_REPLY_STRING) return recheck_later("INFO keyspace", k);
      upstream::UpstreamInfo up = upstream::parse_upstream_info(repl, std::string(k->str, k->len));
      if (!up.parsed) return recheck_later("INFO replication (no role: field)", nullptr);
      decide(up, end_at_request);
    });
  });
}

// An upstream that cannot answer INFO right now (-BUSY while a script runs
// past its time limit, -LOADING, an ACL error) tells nothing about its data:
// an error taken as empty text would read as "lost everything, holds no
// keys" and start a restore over a live dataset.  Decide nothing; ask again.
void Proxy::recheck_later(const char* what, const redisReply* r) {
  checking_ = false;
  std::string answer = r && (r->type == REDIS_REPLY_ERROR || r->type == REDIS_REPLY_STATUS) && r->str
                           ? std::string(r->str, r->len)
                           : "an answer that is not text";
  LOG_WARN("recovery", "%s to upstream %s got %s; deciding nothing, asking again in %llu ms", what,
           cfg_.upstream.str().c_str(), answer.c_str(), static_cast<unsigned long long>(link_backoff_ms_));
  link_retry_at_ = uv_now(&loop_) + link_backoff_ms_;
  link_backoff_ms_ = std::min<uint64_t>(link_backoff_ms_ * 2, 5000);
}

void Proxy::decide(const upstream::UpstreamInfo& up, uint64_t end_at_request) {
  if (up.role == "slave" && clear_leftover_restore()) return;  // proxy_restore.cc
  const std::string ours = log_->replid();
  const uint64_t end = log_->end_offset();
  upstream::RecoveryPlan plan = upstream::plan_recovery(ours, std::min(end, end_at_request), up, cfg_.on_unknown_dataset);
  LOG_INFO("recovery", "%s", plan.explanation.c_str());
  // A refusal lasts only while its decision does: a later decision (the
  // operator wiped or fixed the upstream) must not find it still set, or
  // the restored, streaming upstream would stay -LOADING.
  refused_ = plan.action == upstream::RecoveryAction::refuse;
  if (plan.action != upstream::RecoveryAction::resume && holding_) {
    // Only a continued stream proves the held sessions' data; anything else
    // (a full resync, a restore, a refusal) ends the hold.
    holding_ = false;
    set_serving(false, plan.explanation);
  }
  switch (plan.action) {
    case upstream::RecoveryAction::fresh:
    case upstream::RecoveryAction::adopt:
      start_replica_link("", 0);
      break;
    case upstream::RecoveryAction::resume:
      start_replica_link(ours, end);
      break;
    case upstream::RecoveryAction::restore:
      start_restore(plan);
      break;
    case upstream::RecoveryAction::refuse:
      refused_ = true;
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
  recovered_ = true;
  link_->durable(log_->durable_offset());
  link_->start(replid, offset);
}

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
  recovered_ = false;
  holding_ = false;
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
             holding_ ? "; releasing the held replies" : "");
  }
  link_streaming_ = streaming;
  if (streaming && recovered_ && !refused_) {
    holding_ = false;
    verified_control_gen_ = control_gen_;
    set_serving(true, "");
    for (uint64_t id : gate_->unanswered_probes()) send_probe(id);
  }
  if (state == upstream::LinkState::disconnected) {
    if (shutting_down_) return;
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
    const bool same_process = ((was_streaming && recovered_) || holding_) && ctx_.serving && control_ &&
                              control_->up() && verified_control_gen_ == control_gen_ && !refused_;
    recovered_ = false;
    if (same_process) {
      if (!holding_) holding_since_ms_ = uv_now(&loop_);
      holding_ = true;
      LOG_WARN("replica", "%s; the upstream process is the same (its control connection never dropped): "
               "sessions go on, replies are held until the link is back (re-checking in %llu ms)",
               reason.c_str(), static_cast<unsigned long long>(link_backoff_ms_));
    } else {
      LOG_WARN("replica", "%s; re-checking the upstream in %llu ms", reason.c_str(),
               static_cast<unsigned long long>(link_backoff_ms_));
      holding_ = false;
      set_serving(false, "replication link down: " + reason);
    }
    link_retry_at_ = uv_now(&loop_) + link_backoff_ms_;
    link_backoff_ms_ = std::min<uint64_t>(link_backoff_ms_ * 2, 5000);
  }
}

void Proxy::set_serving(bool serving, const std::string& why) {
  ctx_.serving = serving && !shutting_down_;
  if (!serving) {
    not_ready_ = why;
    ctx_.not_serving = "LOADING durable-proxy: " + why;
  } else {
    not_ready_.clear();
  }
}

// ---------------------------------------------------------------- durability

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
    if (!recovered_ || !link_streaming_) return;
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

// ---------------------------------------------------------------- timers

void Proxy::on_check(uv_check_t* c) {
  auto* self = static_cast<Proxy*>(c->data);
  self->ctx_.now_ms = uv_now(&self->loop_);
  if (self->gate_) self->gate_->flush();
}

void Proxy::on_tick(uv_timer_t* t) { static_cast<Proxy*>(t->data)->tick(); }

void Proxy::tick() {
  uint64_t now = uv_now(&loop_);
  ctx_.now_ms = now;
  if (shutting_down_) {
    if (sessions_.empty()) return finish_shutdown();
    if (now >= shutdown_deadline_ && !shutdown_expired_) {
      // Held replies fail with their reason; a short grace lets the errors
      // reach the clients, whose sessions then close themselves.
      shutdown_expired_ = true;
      if (gate_)
        gate_->expire(now, 0, "durable-proxy is shutting down: shutdown.timeout (" +
                                  std::to_string(cfg_.shutdown_timeout_ms) + " ms) passed before the write was durable",
                      /*all=*/true);
      shutdown_deadline_ = now + 1000;
      return;
    }
    if (now >= shutdown_deadline_) finish_shutdown();
    return;
  }
  if (control_ && !control_->up() && control_retry_at_ && now >= control_retry_at_) {
    control_retry_at_ = 0;
    control_->connect();
  }
  if (probe_retry_ && gate_ && control_ && control_->up()) {
    probe_retry_ = false;
    for (uint64_t id : gate_->unanswered_probes()) send_probe(id);
  }
  if (link_retry_at_ && now >= link_retry_at_ && control_ && control_->up() && table_loaded_) {
    link_retry_at_ = 0;
    check_recovery();
  }
  if (refused_ && control_ && control_->up() && now % 5000 < kTickMs) {
    refused_ = false;
    check_recovery();  // the operator may have fixed it
  }
  if (holding_ && now - holding_since_ms_ > cfg_.hold_timeout_ms) {
    // Held replies are failing by now: stop taking commands the log cannot follow.
    holding_ = false;
    set_serving(false, (history_ ? "the upstream " + cfg_.upstream.str() +
                                       " is sending the proxy a full resync; nothing is acknowledged until its "
                                       "checkpoint is durable"
                                 : "replication link to upstream " + cfg_.upstream.str() + " is down") +
                           " (for longer than durability.hold_timeout, " + std::to_string(cfg_.hold_timeout_ms) +
                           " ms)");
  }
  if (checkpointer_) checkpointer_->tick();
  if (gate_) {
    std::string why = ctx_.log_failed ? "the durable log failed: " + ctx_.log_failure
                      : history_ ? "the upstream " + cfg_.upstream.str() +
                                       " is sending the proxy a full resync; nothing is acknowledged until its "
                                       "checkpoint is durable"
                      : !link_streaming_ ? "replication link to upstream " + cfg_.upstream.str() + " is down"
                                         : "the log did not reach the write's offset in time";
    gate_->expire(now, cfg_.hold_timeout_ms, why);
  }
}

// ---------------------------------------------------------------- shutdown

void Proxy::on_signal(uv_signal_t* s, int signum) {
  auto* self = static_cast<Proxy*>(s->data);
  if (signum == SIGHUP) {
    std::string error;
    if (logger_reopen(&error)) LOG_INFO("proxy", "SIGHUP: log output reopened");
    else LOG_ERROR("proxy", "SIGHUP: %s; still writing to the old file", error.c_str());
    return;
  }
  self->begin_shutdown(signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

void Proxy::begin_shutdown(const char* why) {
  if (shutting_down_) {
    finish_shutdown();  // second signal: stop now
    return;
  }
  LOG_INFO("proxy", "%s: stopping; delivering held replies (up to %u ms)", why, cfg_.shutdown_timeout_ms);
  shutting_down_ = true;
  ctx_.serving = false;
  ctx_.not_serving = "LOADING durable-proxy is shutting down";
  if (listening_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
    listening_ = false;
  }
  shutdown_deadline_ = uv_now(&loop_) + cfg_.shutdown_timeout_ms;
  std::vector<Session*> all;
  for (auto& [id, s] : sessions_) all.push_back(s);
  for (Session* s : all) s->drain();
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&tick_))) finish_shutdown();
}

void Proxy::finish_shutdown() {
  static bool done = false;
  if (done) return;
  done = true;
  std::vector<Session*> all;
  for (auto& [id, s] : sessions_) all.push_back(s);
  if (!all.empty()) LOG_WARN("proxy", "closing %zu clients with replies still due", all.size());
  for (Session* s : all) s->close("shutdown");
  close_all_handles();
}

void Proxy::close_all_handles() {
  auto close_h = [](auto* h) {
    auto* uh = reinterpret_cast<uv_handle_t*>(h);
    if (uh->loop && !uv_is_closing(uh)) uv_close(uh, nullptr);
  };
  if (listening_) {
    close_h(&listener_);
    listening_ = false;
  }
  close_h(&tick_);
  close_h(&check_);
  close_h(&durable_async_);
  close_h(&sigterm_);
  close_h(&sigint_);
  close_h(&sighup_);
  if (restorer_) restorer_->close(nullptr);
  if (checkpointer_) checkpointer_->close(nullptr);
  if (link_) link_->close(nullptr);
  if (control_) control_->close(nullptr);
  if (admin_) admin_->close(nullptr);
}

}  // namespace dp
