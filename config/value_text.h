// Parsing and printing of the scalar value kinds used by proxy.yaml and the
// command line: unsigned integers, sizes ("64mb"), durations ("10s"),
// booleans and host:port.  Pure functions, any thread.  Every parser returns
// "" on success or a short reason ("expected ...") that the caller prefixes
// with the place (file:line:column and key, or the flag).
#pragma once

#include <cstdint>
#include <string>

namespace dp::config {

// Plain decimal digits only ("10000"); no sign, no spaces, no hex.
std::string parse_uint_text(const std::string& text, uint64_t* out);

// Sizes follow Valkey's units: b, k = 1000, kb = 1024, m = 1000^2,
// mb = 1024^2, g = 1000^3, gb = 1024^3 (case-insensitive); a plain integer is
// bytes.  "64mb" = 67108864.
std::string parse_size_text(const std::string& text, uint64_t* out);
// Shortest exact form: 67108864 -> "64mb", 1000 -> "1000", 1536 -> "1536".
std::string format_size(uint64_t bytes);

// Durations: an integer followed by us, ms, s, m or h ("500ms", "10s", "1h").
// A plain integer is accepted only for 0.  `unit_us` is the unit of the
// result (1 = microseconds, 1000 = milliseconds, 1000000 = seconds); a value
// that is not a whole number of that unit is an error.
std::string parse_duration_text(const std::string& text, uint64_t unit_us, uint64_t* out);
// Largest exact unit: 10000 ms -> "10s", 3600 s -> "1h", 0 -> "0s".
std::string format_duration(uint64_t value, uint64_t unit_us);

// true/false (also yes/no), case-insensitive.
std::string parse_bool_text(const std::string& text, bool* out);

}  // namespace dp::config
