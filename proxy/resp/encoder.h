// Encoders for the few messages the proxy writes itself (its own errors,
// answers to commands it handles, and commands it sends upstream).
// Each appends to *out; nothing else is touched.  Pure; any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

namespace dp::resp {

void append_simple(std::string* out, std::string_view s);   // +s\r\n (CR/LF -> spaces)
void append_error(std::string* out, std::string_view msg);  // -msg\r\n (msg without '-'; CR/LF -> spaces)
void append_integer(std::string* out, int64_t v);           // :v\r\n
void append_bulk(std::string* out, std::string_view s);     // $len\r\ns\r\n
void append_null_bulk(std::string* out, int resp_version);  // $-1 (RESP2) or _ (RESP3)
void append_null_array(std::string* out, int resp_version); // *-1 (RESP2) or _ (RESP3)
void append_array_header(std::string* out, size_t n);       // *n\r\n
// %n (RESP3) or *2n (RESP2): the caller then appends n keys and values.
void append_map_header(std::string* out, size_t n, int resp_version);
// =N\r\ntxt:... in RESP3 (like INFO), a bulk string in RESP2.
void append_verbatim_or_bulk(std::string* out, std::string_view txt, int resp_version);
// A request as a RESP array of bulk strings.
void append_command(std::string* out, std::initializer_list<std::string_view> args);
void append_command_span(std::string* out, std::span<const std::string_view> args);

}  // namespace dp::resp
