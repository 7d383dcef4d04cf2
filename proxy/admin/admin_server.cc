#include "proxy/admin/admin_server.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "proxy/admin/admin_connection.h"

namespace dp::admin {

AdminServer::AdminServer(uv_loop_t* loop, AdminOptions opts, AdminHandlers handlers)
    : loop_(loop), opts_(std::move(opts)), handlers_(std::move(handlers)) {
  listener_.data = this;
}

AdminServer::~AdminServer() {
  if (state_ != State::idle && state_ != State::closed) {
    // Handles still registered with the loop would point at freed memory.
    std::fprintf(stderr, "admin: AdminServer destroyed before close() completed\n");
    std::abort();
  }
}

bool AdminServer::start(std::string* error) {
  std::string host = opts_.host;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string where = "admin listener " + opts_.host + ":" + std::to_string(opts_.port);
  if (state_ != State::idle) {
    *error = where + ": start() called twice";
    return false;
  }
  sockaddr_storage addr{};
  int rc = host.find(':') != std::string::npos
               ? uv_ip6_addr(host.c_str(), opts_.port, reinterpret_cast<sockaddr_in6*>(&addr))
               : uv_ip4_addr(host.c_str(), opts_.port, reinterpret_cast<sockaddr_in*>(&addr));
  if (rc != 0) {
    *error = where + ": not an IP address (" + uv_strerror(rc) + ")";
    return false;  // no handle opened yet: the server stays idle
  }
  uv_tcp_init(loop_, &listener_);
  listener_open_ = true;
  state_ = State::listening;
  rc = uv_tcp_bind(&listener_, reinterpret_cast<const sockaddr*>(&addr), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 128, on_connection);
  if (rc != 0) {
    *error = where + ": cannot listen: " + uv_strerror(rc);
    return false;
  }
  sockaddr_storage bound{};
  int len = sizeof bound;
  if (uv_tcp_getsockname(&listener_, reinterpret_cast<sockaddr*>(&bound), &len) == 0)
    port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                               : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return true;
}

uint16_t AdminServer::port() const { return port_; }

void AdminServer::on_connection(uv_stream_t* listener, int status) {
  auto* s = static_cast<AdminServer*>(listener->data);
  if (status < 0 || s->state_ != State::listening) return;
  auto* c = new AdminConnection(s);
  const bool over = s->connections_.size() >= s->opts_.max_connections;
  s->connections_.insert(c);
  c->start(listener);
  if (over) c->close();  // accepted so the backlog drains, then dropped
}

void AdminServer::close(std::function<void()> on_closed) {
  if (on_closed) on_closed_.push_back(std::move(on_closed));
  if (state_ == State::closing) return;
  if (state_ == State::idle || state_ == State::closed) {
    state_ = State::closed;
    maybe_finish_close();
    return;
  }
  state_ = State::closing;
  if (listener_open_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&listener_), [](uv_handle_t* h) {
      auto* s = static_cast<AdminServer*>(h->data);
      s->listener_open_ = false;
      s->maybe_finish_close();
    });
  }
  // close() only starts closing; connections leave the set in their callbacks.
  for (AdminConnection* c : connections_) c->close();
}

void AdminServer::maybe_finish_close() {
  if (state_ == State::listening || state_ == State::idle) return;
  if (listener_open_ || !connections_.empty()) return;
  state_ = State::closed;
  auto callbacks = std::move(on_closed_);
  on_closed_.clear();
  for (auto& cb : callbacks) cb();
}

}  // namespace dp::admin
