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
  if (life_.closing() || (life_.open() && started_)) {
    // Handles still registered with the loop would point at freed memory.
    std::fprintf(stderr, "admin: AdminServer destroyed before close() completed\n");
    std::abort();
  }
}

bool AdminServer::start(std::string* error) {
  std::string host = opts_.host;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string where = "admin listener " + opts_.host + ":" + std::to_string(opts_.port);
  if (started_ || !life_.open()) {
    *error = where + (started_ ? ": start() called twice" : ": start() after close()");
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
  started_ = true;
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
  if (status < 0 || !s->life_.open()) return;
  auto* c = new AdminConnection(s);
  const bool over = s->connections_.size() >= s->opts_.max_connections;
  s->connections_.insert(c);
  c->start(listener);
  if (over) c->close();  // accepted so the backlog drains, then dropped
}

void AdminServer::close(std::function<void()> on_closed) {
  if (!life_.begin_close(std::move(on_closed))) return;
  if (listener_open_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&listener_), [](uv_handle_t* h) {
      auto* s = static_cast<AdminServer*>(h->data);
      s->listener_open_ = false;
      s->maybe_finish_close();
    });
  }
  // close() only starts closing; connections leave the set in their callbacks.
  for (AdminConnection* c : connections_) c->close();
  maybe_finish_close();  // nothing was open (never started)
}

void AdminServer::maybe_finish_close() {
  if (!life_.closing() || listener_open_ || !connections_.empty()) return;
  life_.finish();  // may destroy this
}

}  // namespace dp::admin
