// The admin HTTP server: /metrics, /healthz, /readyz, /status and
// POST /checkpoint (see admin_router.h) on a libuv TCP listener.
//
// Threads: loop thread only; handlers run on the loop thread.
// Lifetime: the loop and the handlers' captures must outlive the server.
// Once start() has been called (whatever it returned), call close() and let
// `on_closed` run before destroying the server: its handles belong to the
// loop until then.
//
// Per connection: keep-alive, one request at a time (reading stops until the
// reply is written); 400 on malformed HTTP and 413 over max_request_bytes,
// then close; closed when no complete request arrives within
// idle_timeout_ms of the connection or of the previous reply; connections
// past max_connections are closed at once.  Nothing a client sends touches
// the proxy beyond the handlers' answers.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_set>

#include "proxy/admin/admin_router.h"
#include "proxy/base/lifecycle.h"

namespace dp::admin {

class AdminConnection;

struct AdminOptions {
  std::string host = "127.0.0.1";  // IPv4 or IPv6 literal ("::1" or "[::1]")
  uint16_t port = 9379;            // 0 = any free port (see port())
  std::string token;               // bearer token; "" = no authentication
  bool token_protects_probes = false;  // also require the token on /healthz and /readyz
  size_t max_request_bytes = 8192;
  size_t max_connections = 64;
  uint64_t idle_timeout_ms = 30000;
  // Called after each answer (status code), e.g. to count requests and errors.
  std::function<void(int status)> on_answer;
};

class AdminServer {  // loop thread only
 public:
  AdminServer(uv_loop_t* loop, AdminOptions opts, AdminHandlers handlers);
  ~AdminServer();  // must have been closed (see above); aborts otherwise
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Bind and listen.  On failure `*error` names the address and the cause.
  bool start(std::string* error);
  uint16_t port() const;  // the actual port (when 0 was asked); 0 before start
  // Idempotent: stops listening, closes every connection, then calls
  // on_closed (every callback given, in order, once).
  void close(std::function<void()> on_closed);
  size_t connection_count() const { return connections_.size(); }

 private:
  friend class AdminConnection;
  static void on_connection(uv_stream_t* server, int status);
  void maybe_finish_close();

  uv_loop_t* loop_;
  AdminOptions opts_;
  AdminHandlers handlers_;
  uv_tcp_t listener_{};
  bool listener_open_ = false;  // initialised and not yet closed
  bool started_ = false;  // start() was called: handles may belong to the loop
  Lifecycle life_;
  uint16_t port_ = 0;
  std::unordered_set<AdminConnection*> connections_;
};

}  // namespace dp::admin
