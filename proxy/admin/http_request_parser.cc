#include "proxy/admin/http_request_parser.h"

#include <algorithm>
#include <strings.h>

namespace dp::admin {

std::string_view HttpRequest::path() const {
  std::string_view t = target;
  return t.substr(0, t.find_first_of("?#"));
}

HttpRequestParser::HttpRequestParser(size_t max_request_bytes) : max_request_bytes_(max_request_bytes) {
  llhttp_settings_init(&settings_);
  settings_.on_message_begin = on_message_begin;
  settings_.on_url = on_url;
  settings_.on_header_field = on_header_field;
  settings_.on_header_value = on_header_value;
  settings_.on_header_field_complete = [](llhttp_t* p) {
    HttpRequestParser* s = self(p);
    s->in_authorization_ = strcasecmp(s->header_field_.c_str(), "authorization") == 0;
    s->header_field_.clear();
    return 0;
  };
  settings_.on_headers_complete = on_headers_complete;
  settings_.on_body = on_body;
  settings_.on_message_complete = on_message_complete;
  llhttp_init(&parser_, HTTP_REQUEST, &settings_);
  parser_.data = this;
}

HttpRequestParser::Status HttpRequestParser::feed(const char* data, size_t len, size_t* consumed) {
  *consumed = 0;
  if (failed_ != Status::need_more) return failed_;
  if (complete_) return Status::complete;
  // Never hand llhttp more than one byte past the limit: a request that is
  // still incomplete after that is too large, whatever its shape.
  const size_t n = std::min(len, max_request_bytes_ + 1 - raw_bytes_);
  const llhttp_errno_t err = llhttp_execute(&parser_, data, n);
  if (failed_ != Status::need_more) return failed_;  // a callback hit the limit
  if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
    *consumed = static_cast<size_t>(llhttp_get_error_pos(&parser_) - data);
    raw_bytes_ += *consumed;
    if (err == HPE_PAUSED_UPGRADE) request_.keep_alive = false;  // we never switch protocols
    complete_ = true;
    return Status::complete;
  }
  if (err != HPE_OK) {
    error_ = std::string(llhttp_errno_name(err)) + ": " + llhttp_get_error_reason(&parser_);
    return failed_ = Status::bad_request;
  }
  *consumed = n;
  raw_bytes_ += n;
  if (raw_bytes_ > max_request_bytes_) {
    error_ = "request exceeds " + std::to_string(max_request_bytes_) + " bytes";
    return failed_ = Status::too_large;
  }
  return Status::need_more;
}

void HttpRequestParser::next() {
  if (!complete_) return;
  request_ = HttpRequest{};
  complete_ = false;
  raw_bytes_ = 0;
  if (llhttp_get_errno(&parser_) == HPE_PAUSED) llhttp_resume(&parser_);
  else if (llhttp_get_errno(&parser_) == HPE_PAUSED_UPGRADE) llhttp_resume_after_upgrade(&parser_);
}

bool HttpRequestParser::over_limit(size_t more) {
  // Stored fields alone never exceed the raw limit; checking here stops
  // work early on a long header instead of after the whole input chunk.
  const size_t stored = request_.target.size() + request_.authorization.size() + request_.body.size() +
                        header_field_.size();
  if (stored + more <= max_request_bytes_) return false;
  error_ = "request exceeds " + std::to_string(max_request_bytes_) + " bytes";
  failed_ = Status::too_large;
  return true;
}

int HttpRequestParser::on_message_begin(llhttp_t* p) {
  self(p)->header_field_.clear();
  self(p)->in_authorization_ = false;
  return 0;
}

int HttpRequestParser::on_url(llhttp_t* p, const char* at, size_t len) {
  HttpRequestParser* s = self(p);
  if (s->over_limit(len)) return HPE_USER;
  s->request_.target.append(at, len);
  return 0;
}

int HttpRequestParser::on_header_field(llhttp_t* p, const char* at, size_t len) {
  HttpRequestParser* s = self(p);
  if (s->over_limit(len)) return HPE_USER;
  s->header_field_.append(at, len);
  return 0;
}

int HttpRequestParser::on_header_value(llhttp_t* p, const char* at, size_t len) {
  HttpRequestParser* s = self(p);
  if (!s->in_authorization_) return 0;
  if (s->over_limit(len)) return HPE_USER;
  s->request_.authorization.append(at, len);
  return 0;
}

int HttpRequestParser::on_headers_complete(llhttp_t* p) {
  HttpRequestParser* s = self(p);
  s->request_.method = llhttp_method_name(static_cast<llhttp_method_t>(llhttp_get_method(p)));
  s->request_.keep_alive = llhttp_should_keep_alive(p) != 0;
  // Refuse a declared body that cannot fit before reading any of it.
  if ((p->flags & F_CONTENT_LENGTH) && p->content_length > s->max_request_bytes_) {
    s->over_limit(s->max_request_bytes_ + 1);
    return -1;
  }
  return 0;
}

int HttpRequestParser::on_body(llhttp_t* p, const char* at, size_t len) {
  HttpRequestParser* s = self(p);
  if (s->over_limit(len)) return HPE_USER;
  s->request_.body.append(at, len);
  return 0;
}

int HttpRequestParser::on_message_complete(llhttp_t* p) {
  self(p)->request_.keep_alive = llhttp_should_keep_alive(p) != 0;
  return HPE_PAUSED;
}

}  // namespace dp::admin
