// The proxy's wiring: start-up (the log, the gate, the listener, the admin
// server, the links), the accept loop and the timers.  The rest of Proxy:
// proxy_recovery.cc (the recovery state machine), proxy_restore.cc,
// proxy_replica.cc (the main replica link and durability), proxy_status.cc,
// proxy_checkpoint.cc, proxy_shutdown.cc.
#include "proxy/app/proxy.h"

#include <netdb.h>

#include <csignal>
#include <cstring>

#include "proxy/base/logger.h"
#include "proxy/session/session.h"
#include "proxy/upstream/connection_names.h"

namespace dp {

namespace {

constexpr size_t kSharedReadBuf = 256 * 1024;
constexpr uint64_t kTickMs = 100;

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
  if (cfg_.sharing == config::UpstreamSharing::automatic) {
    shared_pool_ = std::make_unique<SharedPool>(&ctx_, cfg_.shared_connections);
    ctx_.shared_pool = shared_pool_.get();
  }

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

void Proxy::set_serving(bool serving, const std::string& why) {
  ctx_.serving = serving && !stopping();
  if (!serving) {
    not_ready_ = why;
    ctx_.not_serving = "LOADING durable-proxy: " + why;
  } else {
    not_ready_.clear();
  }
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
  if (stopping()) {
    if (sessions_.empty()) return finish_shutdown();
    if (now >= shutdown_deadline_ && shutdown_ == Shutdown::draining) {
      // Held replies fail with their reason; a short grace lets the errors
      // reach the clients, whose sessions then close themselves.
      shutdown_ = Shutdown::expiring;
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
  if (link_retry_at_ && now >= link_retry_at_ && control_ && control_->up() && ctx_.table) {
    link_retry_at_ = 0;
    check_recovery();
  }
  if (state_ == recovery::State::refused && control_ && control_->up() && now % 5000 < kTickMs) {
    check_recovery();  // the operator may have fixed it
  }
  if (hold_since_ms_ && now - *hold_since_ms_ > cfg_.hold_timeout_ms) {
    // Held replies are failing by now: stop taking commands the log cannot follow.
    hold_since_ms_.reset();
    set_serving(false, (switching_history() ? "the upstream " + cfg_.upstream.str() +
                                       " is sending the proxy a full resync; nothing is acknowledged until its "
                                       "checkpoint is durable"
                                 : "replication link to upstream " + cfg_.upstream.str() + " is down") +
                           " (for longer than durability.hold_timeout, " + std::to_string(cfg_.hold_timeout_ms) +
                           " ms)");
  }
  if (checkpointer_) checkpointer_->tick();
  if (gate_) {
    std::string why = ctx_.log_failed ? "the durable log failed: " + ctx_.log_failure
                      : switching_history() ? "the upstream " + cfg_.upstream.str() +
                                       " is sending the proxy a full resync; nothing is acknowledged until its "
                                       "checkpoint is durable"
                      : !link_streaming_ ? "replication link to upstream " + cfg_.upstream.str() + " is down"
                                         : "the log did not reach the write's offset in time";
    gate_->expire(now, cfg_.hold_timeout_ms, why);
  }
}


}  // namespace dp
