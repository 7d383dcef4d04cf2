// An HTTP/1.1 response the admin server writes, and its wire form.  Pure.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace dp::admin {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  bool close = false;  // force "Connection: close" (after a parse error)
};

const char* http_reason_phrase(int status);
// Status line, Content-Type, Content-Length, Connection, extra headers, body.
// `keep_alive` is the request's wish; `response.close` overrides it.
std::string serialize(const HttpResponse& response, bool keep_alive);
// A plain-text response whose body is `text` plus a newline.
HttpResponse text_response(int status, std::string text);

}  // namespace dp::admin
