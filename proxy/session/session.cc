// Session, lifetime and sockets: accept, connect, read both sides into
// the shared buffer, write with try-write then uv_write, backpressure (which
// side reads when), and the endings (upstream gone, client left, close).
// The request path: session_requests.cc; the reply path:
// session_replies.cc.
#include "proxy/session/session.h"

#include <string>
#include <utility>

#include "proxy/base/logger.h"
#include "proxy/resp/encoder.h"
#include "proxy/session/session_metrics.h"

namespace dp {

namespace {

constexpr size_t kMaxPending = 1 << 20;  // pipeline depth bound per client
constexpr uint64_t kUnreachableWaitMs = 1000;
// PUBLISH __durable-proxy:moved "" (see maybe_finish_move).
constexpr std::string_view kMovedPublish = "*3\r\n$7\r\nPUBLISH\r\n$21\r\n__durable-proxy:moved\r\n$0\r\n\r\n";

}  // namespace

Session::Session(ProxyContext* ctx, uint64_t id)
    : ctx_(ctx), id_(id), parser_(ctx->limits), framer_(ctx->limits.max_bulk_len + 1024) {
  client_.data = this;
  upstream_.data = this;
  connect_req_.data = this;
  client_write_.data = this;
  upstream_write_.data = this;
  shutdown_req_.data = this;
}

Session::~Session() = default;

bool Session::accept(uv_stream_t* server) {
  uv_tcp_init(ctx_->loop, &client_);
  ++open_handles_;
  if (int rc = uv_accept(server, reinterpret_cast<uv_stream_t*>(&client_)); rc != 0) {
    LOG_WARN("session", "accept failed: %s", uv_strerror(rc));
    close("accept failed");
    return false;
  }
  uv_tcp_nodelay(&client_, 1);
  if (ctx_->shared_pool) {
    if (SharedUpstream* shared = ctx_->shared_pool->pick()) {
      shared_ = shared;
      shared->attach(this);
      update_reading();
      return true;
    }
  }
  connect_upstream();
  return true;
}

void Session::connect_upstream() {
  uv_tcp_init(ctx_->loop, &upstream_);
  ++open_handles_;
  int rc = uv_tcp_connect(&connect_req_, &upstream_, reinterpret_cast<const sockaddr*>(&ctx_->upstream_addr),
                          &Session::on_connect);
  if (rc != 0) {
    if (moving_) return move_failed(uv_strerror(rc));
    return upstream_unreachable(uv_strerror(rc));
  }
  connecting_ = true;
  update_reading();
}

// ---------------------------------------------------------------- sharing

void Session::begin_move() {
  moving_ = true;
  LOG_DEBUG("session", "client %llu: moves to its own upstream connection", static_cast<unsigned long long>(id_));
  connect_upstream();
}

void Session::maybe_finish_move() {
  if (!moving_ || !connected_ || shared_in_flight_ > 0 || !life_.open()) return;
  if (shared_) shared_->detach(this);
  shared_ = nullptr;
  moving_ = false;
  // First, with their replies dropped: the SETINFOs answered here (they
  // set what CLIENT INFO shows), and, after writes on the shared
  // connection, a PUBLISH that propagates.  The server counts WAIT from the
  // connection's last propagated command, which a new connection does not
  // have: without it a WAIT here would count replicas that have not
  // acknowledged the client's shared writes (the proxy's log among them).
  auto send_dropped = [this](std::string_view request, bool marker) {
    up_out_.append(request);
    Pending p;
    p.kind = commands::Kind::other;
    p.drop = true;
    p.woff_marker = marker;
    push_pending(std::move(p));
  };
  if (!kept_lib_name_.empty()) send_dropped(kept_lib_name_, false);
  if (!kept_lib_ver_.empty()) send_dropped(kept_lib_ver_, false);
  std::string().swap(kept_lib_name_);
  std::string().swap(kept_lib_ver_);
  if (wrote_shared_) {
    if (ctx_->shared_pool && ctx_->shared_pool->cluster()) {
      wait_untrusted_ = "PUBLISH does not propagate in cluster mode";
    } else {
      send_dropped(kMovedPublish, true);
      awaiting_marker_ = true;  // after_io takes the requests once its reply is in
      return after_io();
    }
  }
  process_requests(in_.view(), &in_);
  after_io();
}

void Session::move_failed(const char* cause) {
  // Its commands in flight on the shared connection are answered first;
  // then the error, then the close (what needed its own connection never ran).
  moving_ = false;
  stop_requests_ = true;
  std::string line;
  resp::append_error(&line, "ERR durable-proxy: upstream " + ctx_->upstream_name + " unreachable: " + cause);
  LOG_WARN("session", "client %llu: %s", static_cast<unsigned long long>(id_), line.substr(1, line.size() - 3).c_str());
  answer_locally(line, /*close_after=*/true);
  after_io();
}

void Session::on_shared_reply(std::string_view frame, const resp::Frame& f, uint64_t offset) {
  --shared_in_flight_;
  shared_offset_ = offset;
  on_frame(frame, f);
  shared_offset_ = 0;
}

void Session::on_shared_read_done() {
  if (!life_.open()) return;
  if (client_gone_ && shared_in_flight_ == 0) return close("client left");
  if (moving_) {
    maybe_finish_move();  // which goes on by itself once it moved
    if (moving_) after_io();
    return;
  }
  after_io();
}

void Session::on_shared_gone(const std::string& why) {
  shared_ = nullptr;
  shared_in_flight_ = 0;
  const bool was_moving = std::exchange(moving_, false);  // what needed its own connection never runs
  if (!life_.open()) return;
  // As its own connection failing: before the client spoke, the error
  // answers its first request; after, the client is closed once its held
  // replies are delivered.
  if (!client_spoke_ && pending_.empty() && !was_moving) return upstream_unreachable(why.c_str());
  upstream_gone(why);
}

// ---------------------------------------------------------------- upstream connect

void Session::on_connect(uv_connect_t* req, int status) {
  auto* self = static_cast<Session*>(req->data);
  self->connecting_ = false;
  if (!self->life_.open()) return;
  if (status != 0) {
    if (self->moving_) return self->move_failed(uv_strerror(status));
    return self->upstream_unreachable(uv_strerror(status));
  }
  self->connected_ = true;
  uv_tcp_nodelay(&self->upstream_, 1);
  if (self->client_gone_) {
    if (self->shared_) return;  // closes once its shared replies are in (on_shared_read_done)
    return self->start_swallow();
  }
  if (self->moving_) return self->maybe_finish_move();
  self->flush_upstream();
  self->update_reading();
}

void Session::upstream_unreachable(const char* cause) {
  // Nothing was forwarded: forget what the client sent and tell it why.
  if (ctx_->gate) {
    for (Pending& p : pending_)
      if (p.has_token) ctx_->gate->pending().abandon(std::move(p.token));
    if (!multi_token_.empty()) ctx_->gate->pending().abandon(std::move(multi_token_));
  }
  forget_pending();
  up_out_.clear();
  upstream_closed_ = true;
  std::string msg = "ERR durable-proxy: upstream " + ctx_->upstream_name + " unreachable: " + cause;
  LOG_WARN("session", "client %llu: %s", static_cast<unsigned long long>(id_), msg.c_str());
  unreachable_error_ = std::move(msg);
  if (client_gone_) return close("client left before the upstream connection failed");
  if (client_spoke_) return send_unreachable_error();
  unreachable_timer_ = new uv_timer_t;
  uv_timer_init(ctx_->loop, unreachable_timer_);
  unreachable_timer_->data = this;
  ++open_handles_;
  uv_timer_start(unreachable_timer_, &Session::on_unreachable_timer, kUnreachableWaitMs, 0);
  update_reading();  // keeps reading the client: its first bytes trigger the error
}

void Session::on_unreachable_timer(uv_timer_t* t) {
  auto* self = static_cast<Session*>(t->data);
  if (self->life_.open()) self->send_unreachable_error();
}

void Session::send_unreachable_error() {
  if (unreachable_error_.empty()) return;
  std::string line;
  resp::append_error(&line, unreachable_error_);
  unreachable_error_.clear();
  if (unreachable_timer_) uv_timer_stop(unreachable_timer_);
  queue_reply(line, {.close_after = true});
  release();
  update_reading();
}

// ---------------------------------------------------------------- reading

void Session::alloc_client(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* self = static_cast<Session*>(h->data);
  alloc_read_buffer(self->ctx_, &self->in_, buf);
}

void Session::alloc_upstream(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* self = static_cast<Session*>(h->data);
  alloc_read_buffer(self->ctx_, &self->up_in_, buf);
}

void Session::on_client_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* self = static_cast<Session*>(s->data);
  bool shared = buf->base == self->ctx_->read_buf;
  if (n > 0) self->client_spoke_ = true;
  if (n > 0 && !self->unreachable_error_.empty()) {  // answer the first request with the error
    if (shared) self->ctx_->read_buf_busy = false;
    return self->send_unreachable_error();
  }
  self->consume(n, buf, shared, &self->in_, &Session::process_requests, &Session::client_left,
                "client closed the connection");
}

void Session::on_upstream_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* self = static_cast<Session*>(s->data);
  self->consume(n, buf, buf->base == self->ctx_->read_buf, &self->up_in_, &Session::process_replies,
                &Session::upstream_gone, "upstream closed the connection");
}

// One read of either socket: the bytes go to `process` (straight from the
// shared buffer when they landed there, else from the socket's own buffer),
// an end or error to `gone`.
void Session::consume(ssize_t n, const uv_buf_t* buf, bool shared, ByteBuffer* own,
                      void (Session::*process)(std::string_view, ByteBuffer*),
                      void (Session::*gone)(const std::string&), const char* eof_text) {
  if (n <= 0) {
    if (shared) ctx_->read_buf_busy = false;
    if (n == 0) return;
    (this->*gone)(n == UV_EOF ? eof_text : uv_strerror(static_cast<int>(n)));
    return;
  }
  if (shared) {
    (this->*process)(std::string_view(buf->base, static_cast<size_t>(n)), nullptr);
    ctx_->read_buf_busy = false;
  } else {
    own->commit(static_cast<size_t>(n));
    (this->*process)(own->view(), own);
  }
  after_io();
}

void Session::after_io() {
  if (!life_.open()) return;
  if (std::exchange(resume_after_marker_, false) && !in_.empty() && !client_gone_)
    process_requests(in_.view(), &in_);  // what waited for the marker's reply
  flush_upstream();
  release();
  update_reading();
}

void Session::update_reading() {
  if (!life_.open()) return;
  const uint64_t limit = ctx_->cfg->client_buffer_bytes;
  bool global_full = ctx_->total_held_bytes >= ctx_->cfg->total_held_bytes;
  // While the log lags (ctx_->stream_lagging), a session that has a write in
  // flight or a reply held reads no more requests: the stream stops growing
  // by more than one read per session, and sessions that only read go on.
  bool lag_stop = ctx_->stream_lagging && (writes_in_flight_ > 0 || !held_.empty() || !multi_token_.empty());
  const uint64_t unsent = shared_ ? shared_->queued_bytes() : up_out_.size() + up_writing_.size();
  const uint64_t unsent_limit = shared_ ? shared_->bound() : limit;
  bool want_client = !client_gone_ && !draining_ && !stop_requests_ && !moving_ && !awaiting_marker_ &&
                     (!upstream_closed_ || !unreachable_error_.empty()) && !lag_stop &&
                     unsent < unsent_limit && held_.bytes() < limit &&
                     out_.size() + writing_.size() < limit && pending_.size() < kMaxPending && !global_full;
  if (want_client != reading_client_) {
    if (!want_client && (global_full || lag_stop || held_.bytes() >= limit))
      count_error(ctx_->metrics, admin::ErrorCause::backpressure);  // paused for memory
    reading_client_ = want_client;
    auto* st = reinterpret_cast<uv_stream_t*>(&client_);
    if (want_client) uv_read_start(st, &Session::alloc_client, &Session::on_client_read);
    else uv_read_stop(st);
  }
  // Replies are read only while they fit in this client's and in the total
  // held-reply bounds (a client that left: always, its replies are dropped).
  bool want_upstream = connected_ && !upstream_closed_ &&
                       (client_gone_ || (out_.size() + writing_.size() < limit && held_.bytes() < limit &&
                                         !global_full));
  if (want_upstream != reading_upstream_) {
    reading_upstream_ = want_upstream;
    auto* st = reinterpret_cast<uv_stream_t*>(&upstream_);
    if (want_upstream) uv_read_start(st, &Session::alloc_upstream, &Session::on_upstream_read);
    else uv_read_stop(st);
  }
}

void Session::maybe_resume() { update_reading(); }

// ---------------------------------------------------------------- writing

void Session::flush_upstream() {
  if (!connected_ || upstream_writing_ || up_out_.empty() || upstream_closed_ || !life_.open()) return;
  uv_buf_t b = uv_buf_init(const_cast<char*>(up_out_.data()), static_cast<unsigned>(up_out_.size()));
  auto* st = reinterpret_cast<uv_stream_t*>(&upstream_);
  int n = uv_try_write(st, &b, 1);
  if (n > 0) up_out_.consume(static_cast<size_t>(n));
  else if (n < 0 && n != UV_EAGAIN) return upstream_gone(uv_strerror(n));
  if (up_out_.empty()) {  // all written: an idle session keeps no buffer memory
    up_out_.release();
    up_writing_.release();
    return;
  }
  up_writing_.swap(up_out_);
  upstream_writing_ = true;
  b = uv_buf_init(const_cast<char*>(up_writing_.data()), static_cast<unsigned>(up_writing_.size()));
  uv_write(&upstream_write_, st, &b, 1, &Session::on_upstream_written);
}

void Session::on_upstream_written(uv_write_t* req, int status) {
  auto* self = static_cast<Session*>(req->data);
  self->upstream_writing_ = false;
  self->up_writing_.clear();
  if (!self->life_.open()) return;
  if (status < 0) return self->upstream_gone(uv_strerror(status));
  self->flush_upstream();
  self->update_reading();
}

void Session::flush_client() {
  if (!life_.open() || client_gone_) return;
  if (!client_writing_ && !out_.empty()) {
    uv_buf_t b = uv_buf_init(const_cast<char*>(out_.data()), static_cast<unsigned>(out_.size()));
    auto* st = reinterpret_cast<uv_stream_t*>(&client_);
    int n = uv_try_write(st, &b, 1);
    if (n > 0) out_.consume(static_cast<size_t>(n));
    else if (n < 0 && n != UV_EAGAIN) return client_left(uv_strerror(n));
    if (!out_.empty()) {
      writing_.swap(out_);
      client_writing_ = true;
      b = uv_buf_init(const_cast<char*>(writing_.data()), static_cast<unsigned>(writing_.size()));
      uv_write(&client_write_, st, &b, 1, &Session::on_client_written);
    }
  }
  if (client_writing_ || !out_.empty()) return;
  // Everything due is delivered: an idle session keeps no buffer memory
  // (5,000 idle clients cost ~4 KB each instead of ~12 KB).
  out_.release();
  writing_.release();
  if (close_when_flushed_) return close("protocol error or upstream refused");
  if (held_.empty() && upstream_closed_ && pending_.empty()) return close("upstream closed");
  if (draining_ && nothing_due()) return close("draining: no reply due");
}

void Session::on_client_written(uv_write_t* req, int status) {
  auto* self = static_cast<Session*>(req->data);
  self->client_writing_ = false;
  self->writing_.clear();
  if (!self->life_.open()) return;
  if (status < 0) return self->client_left(uv_strerror(status));
  self->flush_client();
  self->update_reading();
}

// ---------------------------------------------------------------- endings

void Session::upstream_gone(const std::string& why) {
  if (upstream_closed_ || !life_.open()) return;
  upstream_closed_ = true;
  LOG_DEBUG("session", "client %llu: %s", static_cast<unsigned long long>(id_), why.c_str());
  // Commands that got no reply may have run: their marks wait for a probe.
  cover_outstanding();
  forget_pending();
  if (connected_) uv_read_stop(reinterpret_cast<uv_stream_t*>(&upstream_));
  reading_upstream_ = false;
  if (client_gone_) return close(why);
  update_reading();
  flush_client();  // closes once held replies are released and delivered
}

void Session::client_left(const std::string& why) {
  if (client_gone_ || !life_.open()) return;
  client_gone_ = true;
  LOG_DEBUG("session", "client %llu: %s", static_cast<unsigned long long>(id_), why.c_str());
  ctx_->total_held_bytes -= held_.clear();
  out_.clear();
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&client_));
  reading_client_ = false;
  if (shared_) {
    // The shared connection may not have run its commands yet: the probe
    // that covers their marks must follow their replies.
    if (shared_in_flight_ == 0 || ctx_->gate == nullptr) return close(why);
    return;  // on_shared_read_done closes once they are answered
  }
  if (upstream_closed_ || (!connected_ && !connecting_)) return close(why);
  if (connected_) start_swallow();
  // else: on_connect will start swallowing
}

void Session::start_swallow() {
  // Let the upstream finish what it already read, then close: its EOF
  // tells us every forwarded command has run, so the probe that follows
  // covers them all (the "swallow" of late replies).
  if (ctx_->gate == nullptr || (writes_in_flight_ == 0 && multi_token_.empty())) return close("client left");
  flush_upstream();
  uv_shutdown(&shutdown_req_, reinterpret_cast<uv_stream_t*>(&upstream_), [](uv_shutdown_t* req, int) {
    (void)req;  // EOF (or an error) arrives through on_upstream_read
  });
  update_reading();
}

void Session::forget_pending() {
  pending_.clear();
  pending_bytes_.clear();
  writes_in_flight_ = 0;
}

void Session::cover_outstanding() {
  if (!ctx_->gate) return;
  for (Pending& p : pending_)
    if (std::exchange(p.has_token, false)) ctx_->gate->cover(0, &p.token, ctx_->now_ms);
  writes_in_flight_ = 0;
  if (!multi_token_.empty()) ctx_->gate->pending().abandon(std::move(multi_token_));
  multi_token_ = gate::Token{};
}

void Session::drain() {
  draining_ = true;
  update_reading();
  if (nothing_due()) close("shutdown: no reply due");
}

bool Session::nothing_due() const {
  // Messages (pub/sub, MONITOR lines, invalidations) are not replies: a
  // subscriber or MONITOR client has nothing due even while some are held
  // or being written.
  if (moving_ || awaiting_marker_) return false;  // the command it moves for is due (it waits in in_)
  if (held_.holds_reply()) return false;
  if (!subscribed_ && !monitor_ && (!out_.empty() || client_writing_)) return false;
  for (const Pending& p : pending_) {
    if (p.type == PendingType::pubsub && p.confirmations > 0) continue;  // subscribed: only messages follow
    if (p.blocks_forever) return true;  // and what is pipelined behind it waits as long
    return false;
  }
  return true;  // idle, subscribed, or in MONITOR
}

void Session::close(const std::string& why) {
  // The last handle's close callback frees the session (life_.finish()).
  if (!life_.begin_close([this] { delete this; })) return;
  LOG_DEBUG("session", "client %llu: closing: %s", static_cast<unsigned long long>(id_), why.c_str());
  if (shared_) shared_->detach(this);
  shared_ = nullptr;
  cover_outstanding();
  ctx_->total_held_bytes -= held_.clear();
  if (ctx_->session_closed) ctx_->session_closed(this);
  auto close_one = [](uv_tcp_t* h) {
    if (uv_is_closing(reinterpret_cast<uv_handle_t*>(h))) return;
    uv_close(reinterpret_cast<uv_handle_t*>(h), &Session::on_handle_closed);
  };
  int handles = open_handles_;
  if (unreachable_timer_) {
    uv_close(reinterpret_cast<uv_handle_t*>(unreachable_timer_), &Session::on_handle_closed);
    --handles;
  }
  if (handles >= 1) close_one(&client_);
  if (handles >= 2) close_one(&upstream_);
  if (open_handles_ == 0) life_.finish();  // frees the session: nothing after
}

void Session::on_handle_closed(uv_handle_t* h) {
  auto* self = static_cast<Session*>(h->data);
  if (h == reinterpret_cast<uv_handle_t*>(self->unreachable_timer_)) {
    delete self->unreachable_timer_;
    self->unreachable_timer_ = nullptr;
  }
  if (--self->open_handles_ == 0) self->life_.finish();  // frees the session
}

}  // namespace dp
