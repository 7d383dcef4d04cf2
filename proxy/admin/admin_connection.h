// One admin HTTP connection (internal to admin_server.cc).  Owned by its
// AdminServer through the server's set; deletes itself from the close
// callback of its last handle.  Loop thread only.
#pragma once

#include <uv.h>

#include <string>

#include "proxy/admin/http_request_parser.h"
#include "proxy/base/lifecycle.h"

namespace dp::admin {

class AdminServer;
struct HttpResponse;

class AdminConnection {
 public:
  explicit AdminConnection(AdminServer* server);
  // Accepts from `listener` and starts reading; on failure closes itself.
  void start(uv_stream_t* listener);
  void close();  // idempotent

 private:
  ~AdminConnection() = default;  // only from on_handle_closed
  static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void on_write(uv_write_t* req, int status);
  static void on_shutdown(uv_shutdown_t* req, int status);
  static void on_idle(uv_timer_t* t);
  static void on_handle_closed(uv_handle_t* h);
  // Parses and answers; returns true when a reply is being written.
  bool process(const char* data, size_t len);
  void send(const HttpResponse& response, bool keep_alive);

  AdminServer* server_;
  uv_tcp_t tcp_{};
  uv_timer_t idle_{};
  uv_write_t write_req_{};
  uv_shutdown_t shutdown_req_{};
  Lifecycle life_;
  int open_handles_ = 0;
  HttpRequestParser parser_;
  std::string out_;        // reply being written
  bool close_after_write_ = false;
  bool draining_ = false;  // reply sent and shut down: discarding input until EOF
  size_t drained_ = 0;
  std::string leftover_;   // bytes read past the request being answered
  char read_buf_[4096];
};

}  // namespace dp::admin
