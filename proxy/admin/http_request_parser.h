// Resumable HTTP/1.x request parser on llhttp for the admin server: feed
// bytes, get one complete request at a time.  Pure: no I/O, no libuv.
//
// feed() stops right after a complete request (the rest of the input is not
// consumed) so a connection answers one request before reading the next.
// Limits: the request line, headers and body together may not exceed
// `max_request_bytes`, counted on the raw bytes of the request.
// Not thread-safe; one parser per connection.
#pragma once

#include <llhttp.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace dp::admin {

struct HttpRequest {
  std::string method;         // "GET", "POST", ...
  std::string target;         // request target as sent ("/metrics?x=1")
  std::string authorization;  // value of the Authorization header ("" if absent)
  std::string body;
  bool keep_alive = false;    // HTTP/1.1 default or "Connection: keep-alive" on 1.0
  std::string_view path() const;  // target without query string or fragment
};

class HttpRequestParser {
 public:
  enum class Status {
    need_more,   // all input consumed, request not complete yet
    complete,    // request() is ready; call next() before feeding again
    bad_request, // malformed: answer 400 and close (error() says why)
    too_large,   // over max_request_bytes: answer 413 and close
  };

  explicit HttpRequestParser(size_t max_request_bytes);
  HttpRequestParser(const HttpRequestParser&) = delete;
  HttpRequestParser& operator=(const HttpRequestParser&) = delete;

  // Parses from `data`; `*consumed` = bytes used.  After bad_request or
  // too_large the parser stays in that state.
  Status feed(const char* data, size_t len, size_t* consumed);
  const HttpRequest& request() const { return request_; }
  // Forget the completed request and get ready for the next on this connection.
  void next();
  const std::string& error() const { return error_; }

 private:
  static int on_message_begin(llhttp_t* p);
  static int on_url(llhttp_t* p, const char* at, size_t len);
  static int on_header_field(llhttp_t* p, const char* at, size_t len);
  static int on_header_value(llhttp_t* p, const char* at, size_t len);
  static int on_headers_complete(llhttp_t* p);
  static int on_body(llhttp_t* p, const char* at, size_t len);
  static int on_message_complete(llhttp_t* p);
  static HttpRequestParser* self(llhttp_t* p) { return static_cast<HttpRequestParser*>(p->data); }
  bool over_limit(size_t more);

  const size_t max_request_bytes_;
  llhttp_settings_t settings_;
  llhttp_t parser_;
  HttpRequest request_;
  std::string header_field_;
  bool in_authorization_ = false;
  bool complete_ = false;
  size_t raw_bytes_ = 0;  // raw bytes of the current request so far
  Status failed_ = Status::need_more;  // bad_request or too_large once failed
  std::string error_;
};

}  // namespace dp::admin
