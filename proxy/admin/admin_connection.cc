#include "proxy/admin/admin_connection.h"

#include "proxy/admin/admin_server.h"
#include "proxy/admin/http_response.h"

namespace dp::admin {
namespace {
constexpr size_t kMaxDrainBytes = 64 * 1024;
constexpr uint64_t kDrainTimeoutMs = 1000;
}  // namespace

AdminConnection::AdminConnection(AdminServer* server)
    : server_(server), parser_(server->opts_.max_request_bytes) {}

void AdminConnection::start(uv_stream_t* listener) {
  uv_tcp_init(server_->loop_, &tcp_);
  uv_timer_init(server_->loop_, &idle_);
  tcp_.data = this;
  idle_.data = this;
  open_handles_ = 2;
  if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(&tcp_)) != 0 ||
      uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), on_alloc, on_read) != 0) {
    close();
    return;
  }
  uv_timer_start(&idle_, on_idle, server_->opts_.idle_timeout_ms, 0);
}

void AdminConnection::close() {
  if (!life_.begin_close(nullptr)) return;
  // A pending write or shutdown is cancelled by uv_close and its callback
  // runs before the close callbacks, so the members it uses are still alive.
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_handle_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&idle_), on_handle_closed);
}

void AdminConnection::on_handle_closed(uv_handle_t* h) {
  auto* c = static_cast<AdminConnection*>(h->data);
  if (--c->open_handles_ > 0) return;
  AdminServer* server = c->server_;
  server->connections_.erase(c);
  c->life_.finish();
  delete c;
  server->maybe_finish_close();
}

void AdminConnection::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* c = static_cast<AdminConnection*>(h->data);
  *buf = uv_buf_init(c->read_buf_, sizeof c->read_buf_);
}

void AdminConnection::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* c = static_cast<AdminConnection*>(s->data);
  if (nread < 0) {  // EOF or error: nothing more can be answered
    c->close();
    return;
  }
  if (nread == 0 || !c->life_.open()) return;
  if (c->draining_) {  // after an error reply: discard until EOF, bounded
    c->drained_ += static_cast<size_t>(nread);
    if (c->drained_ > kMaxDrainBytes) c->close();
    return;
  }
  c->process(buf->base, static_cast<size_t>(nread));
}

bool AdminConnection::process(const char* data, size_t len) {
  size_t used = 0;
  switch (parser_.feed(data, len, &used)) {
    case HttpRequestParser::Status::need_more:
      return false;
    case HttpRequestParser::Status::complete: {
      const HttpRequest& request = parser_.request();
      RouteOptions route{server_->opts_.token, server_->opts_.token_protects_probes};
      const HttpResponse response = route_admin_request(request, server_->handlers_, route);
      leftover_.assign(data + used, len - used);
      const bool keep_alive = request.keep_alive;
      parser_.next();
      send(response, keep_alive);
      return true;
    }
    case HttpRequestParser::Status::bad_request: {
      HttpResponse r = text_response(400, "bad request: " + parser_.error());
      r.close = true;
      send(r, false);
      return true;
    }
    case HttpRequestParser::Status::too_large: {
      HttpResponse r = text_response(413, "request too large: " + parser_.error());
      r.close = true;
      send(r, false);
      return true;
    }
  }
  return false;
}

void AdminConnection::send(const HttpResponse& response, bool keep_alive) {
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
  uv_timer_stop(&idle_);
  out_ = serialize(response, keep_alive);
  close_after_write_ = response.close || !keep_alive;
  if (server_->opts_.on_answer) server_->opts_.on_answer(response.status);
  uv_buf_t buf = uv_buf_init(out_.data(), static_cast<unsigned>(out_.size()));
  write_req_.data = this;
  if (uv_write(&write_req_, reinterpret_cast<uv_stream_t*>(&tcp_), &buf, 1, on_write) != 0) close();
}

void AdminConnection::on_write(uv_write_t* req, int status) {
  auto* c = static_cast<AdminConnection*>(req->data);
  if (!c->life_.open()) return;
  if (status < 0) {
    c->close();
    return;
  }
  if (c->close_after_write_) {
    // Shut down first so the reply is flushed before the socket closes.
    c->shutdown_req_.data = c;
    if (uv_shutdown(&c->shutdown_req_, reinterpret_cast<uv_stream_t*>(&c->tcp_), on_shutdown) != 0) c->close();
    return;
  }
  uv_timer_start(&c->idle_, on_idle, c->server_->opts_.idle_timeout_ms, 0);
  std::string rest = std::move(c->leftover_);
  c->leftover_.clear();
  if (!rest.empty() && c->process(rest.data(), rest.size())) return;
  if (uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp_), on_alloc, on_read) != 0) c->close();
}

// Closing a socket with unread input makes the kernel send RST, which can
// destroy the reply in flight before the client reads it (a 413 after a big
// upload).  So after the reply and our FIN, read and discard what the client
// still sends until it closes, for a bounded time and size.
void AdminConnection::on_shutdown(uv_shutdown_t* req, int status) {
  auto* c = static_cast<AdminConnection*>(req->data);
  if (!c->life_.open()) return;
  c->draining_ = true;
  if (status < 0 || uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp_), on_alloc, on_read) != 0) {
    c->close();
    return;
  }
  uv_timer_start(&c->idle_, on_idle, kDrainTimeoutMs, 0);
}

void AdminConnection::on_idle(uv_timer_t* t) { static_cast<AdminConnection*>(t->data)->close(); }

}  // namespace dp::admin
