#include "proxy/resp/request_parser.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace dp::resp {

namespace {

constexpr size_t npos = std::string_view::npos;

bool is_c_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

bool parse_strict_int64(std::string_view s, int64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  if (s == "0") {
    *out = 0;
    return true;
  }
  size_t i = 0;
  bool negative = false;
  if (s[0] == '-') {
    negative = true;
    if (++i == s.size()) return false;
  }
  if (s[i] < '1' || s[i] > '9') return false;  // no leading zeros, no "-0"
  uint64_t v = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    unsigned digit = static_cast<unsigned>(s[i] - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - digit) / 10) return false;
    v = v * 10 + digit;
  }
  constexpr uint64_t max_pos = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (negative) {
    if (v > max_pos + 1) return false;
    *out = v == max_pos + 1 ? std::numeric_limits<int64_t>::min() : -static_cast<int64_t>(v);
  } else {
    if (v > max_pos) return false;
    *out = static_cast<int64_t>(v);
  }
  return true;
}

bool split_inline_args(std::string_view line, std::string* scratch,
                       std::vector<std::pair<size_t, size_t>>* spans) {
  // Valkey works on a C string: a NUL ends the line.
  line = line.substr(0, std::min(line.size(), line.find('\0')));
  const size_t n = line.size();
  auto at = [&](size_t i) -> char { return i < n ? line[i] : '\0'; };
  size_t i = 0;
  for (;;) {
    while (i < n && is_c_space(line[i])) ++i;
    if (i >= n) return true;
    bool in_dq = false, in_sq = false, done = false;
    const size_t start = scratch->size();
    while (!done) {
      const char c = at(i);
      if (in_dq) {
        if (c == '\\' && at(i + 1) == 'x' && hex_value(at(i + 2)) >= 0 &&
            hex_value(at(i + 3)) >= 0) {
          scratch->push_back(static_cast<char>(hex_value(at(i + 2)) * 16 + hex_value(at(i + 3))));
          i += 3;
        } else if (c == '\\' && at(i + 1) != '\0') {
          ++i;
          switch (line[i]) {
            case 'n': scratch->push_back('\n'); break;
            case 'r': scratch->push_back('\r'); break;
            case 't': scratch->push_back('\t'); break;
            case 'b': scratch->push_back('\b'); break;
            case 'a': scratch->push_back('\a'); break;
            default: scratch->push_back(line[i]); break;
          }
        } else if (c == '"') {
          // A closing quote must be followed by a space or the end.
          if (at(i + 1) != '\0' && !is_c_space(at(i + 1))) return false;
          done = true;
        } else if (c == '\0') {
          return false;  // unterminated "..."
        } else {
          scratch->push_back(c);
        }
      } else if (in_sq) {
        if (c == '\\' && at(i + 1) == '\'') {
          ++i;
          scratch->push_back('\'');
        } else if (c == '\'') {
          if (at(i + 1) != '\0' && !is_c_space(at(i + 1))) return false;
          done = true;
        } else if (c == '\0') {
          return false;  // unterminated '...'
        } else {
          scratch->push_back(c);
        }
      } else {
        switch (c) {
          // Only these end an unquoted word; \v and \f belong to it.
          case ' ': case '\n': case '\r': case '\t': case '\0': done = true; break;
          case '"': in_dq = true; break;
          case '\'': in_sq = true; break;
          default: scratch->push_back(c); break;
        }
      }
      if (i < n) ++i;
    }
    spans->emplace_back(start, scratch->size() - start);
  }
}

RequestParser::RequestParser(RequestLimits limits) : limits_(limits) {}

void RequestParser::reset() {
  stage_ = Stage::start;
  pos_ = 0;
  scan_ = 0;
  scan_hit_nul_ = false;
  remaining_ = 0;
  bulk_len_ = 0;
  spans_.clear();
  error_.clear();
}

void RequestParser::finish_request() {
  stage_ = Stage::start;
  pos_ = 0;
  scan_ = 0;
  scan_hit_nul_ = false;
  remaining_ = 0;
}

ParseStatus RequestParser::fail(std::string text) {
  // Valkey turns CR/LF inside an error message into spaces.
  std::replace_if(text.begin(), text.end(), [](char c) { return c == '\r' || c == '\n'; }, ' ');
  error_ = std::move(text);
  stage_ = Stage::failed;
  return ParseStatus::error;
}

size_t RequestParser::find_line_end(std::string_view input, size_t from, char terminator) {
  if (scan_hit_nul_) return npos;
  size_t start = std::max(scan_, from);
  if (start >= input.size()) return npos;
  const char* base = input.data();
  const size_t len = input.size() - start;
  const void* hit = std::memchr(base + start, terminator, len);
  const size_t limit = hit ? static_cast<size_t>(static_cast<const char*>(hit) - base) : input.size();
  if (std::memchr(base + start, '\0', limit - start) != nullptr) {
    scan_hit_nul_ = true;  // strchr() would stop here and never see the end
    return npos;
  }
  if (hit) return limit;
  scan_ = input.size();
  return npos;
}

ParseStatus RequestParser::parse(std::string_view input, Request* out) {
  if (stage_ == Stage::failed) return ParseStatus::error;
  if (input.size() < pos_) finish_request();  // caller broke the contract: start over
  if (stage_ == Stage::start) {
    if (input.empty()) return ParseStatus::incomplete;
    spans_.clear();
    stage_ = input[0] == '*' ? Stage::mbulk_count : Stage::inline_line;
  }
  return stage_ == Stage::inline_line ? parse_inline(input, out) : parse_multibulk(input, out);
}

ParseStatus RequestParser::parse_inline(std::string_view input, Request* out) {
  const size_t lf = find_line_end(input, 0, '\n');
  // Valkey refuses once more than max_inline_len bytes wait without a LF.
  if (lf == npos ? input.size() > limits_.max_inline_len : lf > limits_.max_inline_len) {
    return fail("ERR Protocol error: too big inline request");
  }
  if (lf == npos) return ParseStatus::incomplete;
  const size_t line_len = (lf > 0 && input[lf - 1] == '\r') ? lf - 1 : lf;
  scratch_.clear();
  spans_.clear();
  if (!split_inline_args(input.substr(0, line_len), &scratch_, &spans_)) {
    return fail("ERR Protocol error: unbalanced quotes in request");
  }
  out->args.clear();
  out->consumed = lf + 1;
  out->is_inline = true;
  finish_request();
  if (spans_.empty()) return ParseStatus::skip;
  for (const auto& [off, len] : spans_) out->args.emplace_back(scratch_.data() + off, len);
  return ParseStatus::ok;
}

ParseStatus RequestParser::parse_multibulk(std::string_view input, Request* out) {
  if (stage_ == Stage::mbulk_count) {
    const size_t cr = find_line_end(input, 0, '\r');
    if (cr == npos ? input.size() > limits_.max_inline_len : cr > limits_.max_inline_len) {
      return fail("ERR Protocol error: too big mbulk count string");
    }
    if (cr == npos || cr + 2 > input.size()) return ParseStatus::incomplete;
    int64_t count = 0;
    if (!parse_strict_int64(input.substr(1, cr - 1), &count) ||
        (count > 0 && static_cast<uint64_t>(count) > limits_.max_multibulk_len)) {
      return fail("ERR Protocol error: invalid multibulk length");
    }
    pos_ = cr + 2;  // Valkey skips the byte after CR unchecked
    if (count <= 0) {
      out->args.clear();
      out->consumed = pos_;
      out->is_inline = false;
      finish_request();
      return ParseStatus::skip;
    }
    remaining_ = static_cast<uint64_t>(count);
    // Like Valkey, don't trust a huge count before its elements arrive.
    spans_.reserve(std::min<uint64_t>(remaining_, 1024));
    stage_ = Stage::bulk_header;
    scan_ = pos_;
    scan_hit_nul_ = false;
  }
  while (remaining_ > 0) {
    if (stage_ == Stage::bulk_header) {
      const size_t cr = find_line_end(input, pos_, '\r');
      if (cr == npos ? input.size() - pos_ > limits_.max_inline_len
                     : cr - pos_ > limits_.max_inline_len) {
        return fail("ERR Protocol error: too big bulk count string");
      }
      if (cr == npos || cr + 2 > input.size()) return ParseStatus::incomplete;
      if (input[pos_] != '$') {
        return fail(std::string("ERR Protocol error: expected '$', got '") + input[pos_] + "'");
      }
      int64_t len = 0;
      if (!parse_strict_int64(input.substr(pos_ + 1, cr - pos_ - 1), &len) || len < 0 ||
          static_cast<uint64_t>(len) > limits_.max_bulk_len) {
        return fail("ERR Protocol error: invalid bulk length");
      }
      bulk_len_ = static_cast<uint64_t>(len);
      pos_ = cr + 2;
      stage_ = Stage::bulk_data;
    }
    // stage_ == bulk_data; the two bytes after the payload are not checked.
    if (input.size() - pos_ < bulk_len_ + 2) return ParseStatus::incomplete;
    spans_.emplace_back(pos_, static_cast<size_t>(bulk_len_));
    pos_ += static_cast<size_t>(bulk_len_) + 2;
    --remaining_;
    stage_ = Stage::bulk_header;
    scan_ = pos_;
    scan_hit_nul_ = false;
  }
  out->args.clear();
  for (const auto& [off, len] : spans_) out->args.emplace_back(input.data() + off, len);
  out->consumed = pos_;
  out->is_inline = false;
  finish_request();
  return ParseStatus::ok;
}

}  // namespace dp::resp
