#include "proxy/resp/encoder.h"

#include <charconv>

namespace dp::resp {

namespace {

void append_number(std::string* out, int64_t v) {
  char buf[24];
  const auto res = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, res.ptr);
}

// A simple line must not contain CR or LF: that would end it early.
void append_line(std::string* out, char type, std::string_view s) {
  out->push_back(type);
  const size_t start = out->size();
  out->append(s);
  for (size_t i = start; i < out->size(); ++i) {
    if ((*out)[i] == '\r' || (*out)[i] == '\n') (*out)[i] = ' ';
  }
  out->append("\r\n");
}

void append_header(std::string* out, char type, int64_t n) {
  out->push_back(type);
  append_number(out, n);
  out->append("\r\n");
}

}  // namespace

void append_simple(std::string* out, std::string_view s) { append_line(out, '+', s); }

void append_error(std::string* out, std::string_view msg) { append_line(out, '-', msg); }

void append_integer(std::string* out, int64_t v) { append_header(out, ':', v); }

void append_bulk(std::string* out, std::string_view s) {
  append_header(out, '$', static_cast<int64_t>(s.size()));
  out->append(s);
  out->append("\r\n");
}

void append_null_bulk(std::string* out, int resp_version) {
  out->append(resp_version >= 3 ? "_\r\n" : "$-1\r\n");
}

void append_null_array(std::string* out, int resp_version) {
  out->append(resp_version >= 3 ? "_\r\n" : "*-1\r\n");
}

void append_array_header(std::string* out, size_t n) {
  append_header(out, '*', static_cast<int64_t>(n));
}

void append_map_header(std::string* out, size_t n, int resp_version) {
  if (resp_version >= 3) {
    append_header(out, '%', static_cast<int64_t>(n));
  } else {
    append_header(out, '*', static_cast<int64_t>(2 * n));
  }
}

void append_verbatim_or_bulk(std::string* out, std::string_view txt, int resp_version) {
  if (resp_version < 3) {
    append_bulk(out, txt);
    return;
  }
  append_header(out, '=', static_cast<int64_t>(txt.size() + 4));
  out->append("txt:");
  out->append(txt);
  out->append("\r\n");
}

void append_command(std::string* out, std::initializer_list<std::string_view> args) {
  append_command_span(out, std::span<const std::string_view>(args.begin(), args.size()));
}

void append_command_span(std::string* out, std::span<const std::string_view> args) {
  append_array_header(out, args.size());
  for (std::string_view a : args) append_bulk(out, a);
}

}  // namespace dp::resp
