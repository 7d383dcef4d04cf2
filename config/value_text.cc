#include "config/value_text.h"

#include <algorithm>
#include <cctype>
#include <utility>

#include "config/config.h"

namespace dp::config {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string quoted(const std::string& s) { return "'" + s + "'"; }

// Splits "123mb" into digits and suffix; fails on anything but digits first.
bool split_number(const std::string& text, uint64_t* number, std::string* suffix) {
  size_t i = 0;
  uint64_t n = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    uint64_t digit = static_cast<uint64_t>(text[i] - '0');
    if (__builtin_mul_overflow(n, 10u, &n) || __builtin_add_overflow(n, digit, &n)) return false;
    ++i;
  }
  if (i == 0) return false;
  *number = n;
  *suffix = lower(text.substr(i));
  return true;
}

constexpr std::pair<const char*, uint64_t> kSizeUnits[] = {
    {"gb", 1ull << 30}, {"mb", 1ull << 20}, {"kb", 1ull << 10}, {"g", 1000000000ull},
    {"m", 1000000ull},  {"k", 1000ull},     {"b", 1},           {"", 1},
};

constexpr std::pair<const char*, uint64_t> kDurationUnits[] = {
    {"h", 3600000000ull}, {"m", 60000000ull}, {"s", 1000000ull}, {"ms", 1000ull}, {"us", 1},
};

const char* unit_name(uint64_t unit_us) {
  switch (unit_us) {
    case 1: return "microseconds";
    case 1000: return "milliseconds";
    case 1000000: return "seconds";
    default: return "units";
  }
}

}  // namespace

std::string parse_uint_text(const std::string& text, uint64_t* out) {
  uint64_t n = 0;
  std::string suffix;
  if (!split_number(text, &n, &suffix) || !suffix.empty())
    return "expected a whole number, got " + quoted(text);
  *out = n;
  return "";
}

std::string parse_size_text(const std::string& text, uint64_t* out) {
  uint64_t n = 0;
  std::string suffix;
  const std::string expected = "expected a size such as 65536, 64kb, 64mb or 1gb, got " + quoted(text);
  if (!split_number(text, &n, &suffix)) return expected;
  for (const auto& [name, factor] : kSizeUnits) {
    if (suffix != name) continue;
    uint64_t bytes = 0;
    if (__builtin_mul_overflow(n, factor, &bytes)) return "size " + quoted(text) + " is too large";
    *out = bytes;
    return "";
  }
  return expected;
}

std::string format_size(uint64_t bytes) {
  // Binary units only: they are the ones the defaults use and Valkey prints.
  for (const auto& [name, factor] : kSizeUnits) {
    if (factor < 1024 || bytes == 0 || bytes % factor != 0) continue;
    if (name[1] != 'b') continue;
    return std::to_string(bytes / factor) + name;
  }
  return std::to_string(bytes);
}

std::string parse_duration_text(const std::string& text, uint64_t unit_us, uint64_t* out) {
  uint64_t n = 0;
  std::string suffix;
  const std::string expected = "expected a duration such as 500ms, 10s, 5m or 1h, got " + quoted(text);
  if (!split_number(text, &n, &suffix)) return expected;
  if (suffix.empty()) {
    if (n != 0) return "duration " + quoted(text) + " needs a unit (us, ms, s, m or h)";
    *out = 0;
    return "";
  }
  for (const auto& [name, factor] : kDurationUnits) {
    if (suffix != name) continue;
    uint64_t us = 0;
    if (__builtin_mul_overflow(n, factor, &us)) return "duration " + quoted(text) + " is too large";
    if (us % unit_us != 0)
      return "duration " + quoted(text) + " is not a whole number of " + unit_name(unit_us);
    *out = us / unit_us;
    return "";
  }
  return expected;
}

std::string format_duration(uint64_t value, uint64_t unit_us) {
  uint64_t us = 0;
  if (__builtin_mul_overflow(value, unit_us, &us)) return std::to_string(value);  // unreachable for our ranges
  if (us == 0) return unit_us >= 1000000 ? "0s" : unit_us >= 1000 ? "0ms" : "0us";
  for (const auto& [name, factor] : kDurationUnits)
    if (us % factor == 0) return std::to_string(us / factor) + name;
  return std::to_string(us) + "us";
}

std::string parse_bool_text(const std::string& text, bool* out) {
  const std::string t = lower(text);
  if (t == "true" || t == "yes") {
    *out = true;
    return "";
  }
  if (t == "false" || t == "no") {
    *out = false;
    return "";
  }
  return "expected true or false, got " + quoted(text);
}

std::string parse_host_port(const std::string& text, HostPort* out) {
  const std::string expected = "expected HOST:PORT such as 127.0.0.1:6379 or [::1]:6379, got " + quoted(text);
  std::string host, port;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') return expected;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos) return expected;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string::npos)
      return "IPv6 address needs brackets ([" + host + "]:" + port + "), got " + quoted(text);
  }
  if (host.empty()) return "missing host in " + quoted(text);
  for (char c : host)
    if (std::isspace(static_cast<unsigned char>(c)) || c == '[' || c == ']') return expected;
  uint64_t n = 0;
  if (!parse_uint_text(port, &n).empty() || port.size() > 5 || n > 65535)
    return "port must be a number from 0 to 65535 in " + quoted(text);
  out->host = host;
  out->port = static_cast<uint16_t>(n);
  return "";
}

std::string HostPort::str() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

}  // namespace dp::config
