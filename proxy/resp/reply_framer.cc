#include "proxy/resp/reply_framer.h"

#include <cstdio>
#include <cstring>

#include "proxy/resp/request_parser.h"  // parse_strict_int64

namespace dp::resp {

namespace {

bool is_line_type(char t) {
  return t == '+' || t == '-' || t == ':' || t == '_' || t == ',' || t == '#' || t == '(';
}
bool is_blob_type(char t) { return t == '$' || t == '!' || t == '='; }
bool is_aggregate_type(char t) {
  return t == '*' || t == '~' || t == '>' || t == '%' || t == '|';
}

std::string describe_byte(char c) {
  char buf[8];
  if (c >= 0x20 && c < 0x7f && c != '\'') {
    std::snprintf(buf, sizeof buf, "'%c'", c);
  } else {
    std::snprintf(buf, sizeof buf, "0x%02x", static_cast<unsigned char>(c));
  }
  return buf;
}

// A header line "<type><text>\r\n" starting at `pos` of a complete frame.
bool header_line(std::string_view frame, size_t pos, std::string_view* text, size_t* next) {
  const size_t cr = frame.find('\r', pos);
  if (cr == std::string_view::npos || cr + 1 >= frame.size() || frame[cr + 1] != '\n') return false;
  *text = frame.substr(pos + 1, cr - pos - 1);
  *next = cr + 2;
  return true;
}

// Offset of the reply proper in a complete frame, after leading attributes;
// npos if malformed.
size_t skip_attributes(std::string_view frame) {
  size_t pos = 0;
  ReplyFramer framer;
  while (pos < frame.size() && frame[pos] == '|') {
    std::string_view text;
    int64_t n = 0;
    if (!header_line(frame, pos, &text, &pos) || !parse_strict_int64(text, &n) || n < 0) {
      return std::string_view::npos;
    }
    for (uint64_t i = 0; i < 2 * static_cast<uint64_t>(n); ++i) {
      Frame f;
      framer.reset();
      if (framer.next(frame.substr(pos), &f) != FrameStatus::ok) return std::string_view::npos;
      pos += f.length;
    }
  }
  return pos < frame.size() ? pos : std::string_view::npos;
}

}  // namespace

ReplyFramer::ReplyFramer(uint64_t max_bulk_len, size_t max_depth)
    : max_bulk_len_(max_bulk_len), max_depth_(max_depth) {}

void ReplyFramer::reset() {
  pos_ = scan_ = blob_end_ = attr_length_ = 0;
  stack_.clear();
  error_.clear();
  failed_ = false;
}

FrameStatus ReplyFramer::fail(std::string text) {
  error_ = std::move(text);
  failed_ = true;
  return FrameStatus::error;
}

bool ReplyFramer::element_done() {
  while (!stack_.empty()) {
    Level& top = stack_.back();
    if (--top.remaining > 0) return false;
    const bool attribute = top.attribute;
    stack_.pop_back();
    if (attribute) {
      // An attribute is not an element of what contains it; at top level it
      // is a prefix of the reply that follows.
      if (stack_.empty()) attr_length_ = pos_;
      return false;
    }
  }
  return true;
}

FrameStatus ReplyFramer::next(std::string_view input, Frame* out) {
  if (failed_) return FrameStatus::error;
  if (input.size() < pos_) {  // caller broke the contract: start over
    reset();
  }
  for (;;) {
    if (blob_end_ != 0) {
      if (input.size() < blob_end_) return FrameStatus::incomplete;
      if (input[blob_end_ - 2] != '\r' || input[blob_end_ - 1] != '\n') {
        return fail("blob not followed by CRLF at offset " + std::to_string(blob_end_ - 2));
      }
      pos_ = scan_ = blob_end_;
      blob_end_ = 0;
      if (element_done()) break;
      continue;
    }
    if (pos_ >= input.size()) return FrameStatus::incomplete;
    const char type = input[pos_];
    if (!is_line_type(type) && !is_blob_type(type) && !is_aggregate_type(type)) {
      return fail("bad reply type byte " + describe_byte(type) + " at offset " +
                  std::to_string(pos_));
    }
    const size_t from = scan_ > pos_ ? scan_ : pos_;
    const void* hit = std::memchr(input.data() + from, '\r', input.size() - from);
    if (hit == nullptr) {
      scan_ = input.size();
      return FrameStatus::incomplete;
    }
    const size_t cr = static_cast<size_t>(static_cast<const char*>(hit) - input.data());
    scan_ = cr;
    if (cr + 1 >= input.size()) return FrameStatus::incomplete;
    if (input[cr + 1] != '\n') {
      return fail("CR not followed by LF at offset " + std::to_string(cr));
    }
    const size_t next_pos = cr + 2;
    if (is_line_type(type)) {
      pos_ = scan_ = next_pos;
      if (element_done()) break;
      continue;
    }
    const std::string_view text = input.substr(pos_ + 1, cr - pos_ - 1);
    int64_t n = 0;
    if (!parse_strict_int64(text, &n) || n < -1 || (n == -1 && type != '$' && type != '*')) {
      return fail("bad length '" + std::string(text.substr(0, 32)) + "' after " +
                  describe_byte(type) + " at offset " + std::to_string(pos_));
    }
    const size_t header_at = pos_;
    pos_ = scan_ = next_pos;
    if (n == -1) {  // RESP2 null bulk or null array: one element
      if (element_done()) break;
      continue;
    }
    const uint64_t len = static_cast<uint64_t>(n);
    if (is_blob_type(type)) {
      if (len > max_bulk_len_) {
        return fail("bulk length " + std::to_string(len) + " over the limit " +
                    std::to_string(max_bulk_len_) + " at offset " + std::to_string(header_at));
      }
      blob_end_ = next_pos + static_cast<size_t>(len) + 2;
      continue;
    }
    // Aggregate.
    const uint64_t elements = (type == '%' || type == '|') ? 2 * len : len;
    if (elements == 0) {
      if (type == '|') {
        if (stack_.empty()) attr_length_ = pos_;
        continue;
      }
      if (element_done()) break;
      continue;
    }
    if (stack_.size() >= max_depth_) {
      return fail("reply nested deeper than " + std::to_string(max_depth_) + " at offset " +
                  std::to_string(header_at));
    }
    stack_.push_back(Level{elements, type == '|'});
  }
  out->length = pos_;
  out->attr_length = attr_length_;
  out->type = input[attr_length_];
  pos_ = scan_ = blob_end_ = attr_length_ = 0;
  return FrameStatus::ok;
}

bool frame_scalar(std::string_view frame, std::string_view* out) {
  const size_t pos = skip_attributes(frame);
  if (pos == std::string_view::npos) return false;
  const char type = frame[pos];
  std::string_view text;
  size_t next = 0;
  if (!header_line(frame, pos, &text, &next)) return false;
  if (is_line_type(type)) {
    if (type == '_') return false;
    *out = text;
    return true;
  }
  if (!is_blob_type(type)) return false;
  int64_t n = 0;
  if (!parse_strict_int64(text, &n) || n < 0) return false;  // $-1 is null
  const uint64_t len = static_cast<uint64_t>(n);
  if (frame.size() - next < len) return false;
  std::string_view payload = frame.substr(next, static_cast<size_t>(len));
  if (type == '=' && payload.size() >= 4 && payload[3] == ':') payload.remove_prefix(4);
  *out = payload;
  return true;
}

bool frame_elements(std::string_view frame, size_t max, FrameElements* out) {
  out->count = 0;
  out->items.clear();
  out->types.clear();
  out->flags.clear();
  size_t pos = skip_attributes(frame);
  if (pos == std::string_view::npos) return false;
  const char type = frame[pos];
  if (!is_aggregate_type(type)) return false;
  std::string_view text;
  int64_t n = 0;
  if (!header_line(frame, pos, &text, &pos) || !parse_strict_int64(text, &n) || n < 0) {
    return false;  // *-1 is a null, not an aggregate
  }
  out->count = static_cast<size_t>(n);
  const uint64_t elements = (type == '%' || type == '|') ? 2 * static_cast<uint64_t>(n)
                                                         : static_cast<uint64_t>(n);
  ReplyFramer framer;
  for (uint64_t i = 0; i < elements && i < max; ++i) {
    Frame f;
    framer.reset();
    if (framer.next(frame.substr(pos), &f) != FrameStatus::ok) return false;
    const std::string_view elem = frame.substr(pos, f.length);
    std::string_view payload;
    uint8_t flags = 0;
    if (is_aggregate_type(f.type)) {
      std::string_view count_text;
      size_t unused = 0;
      header_line(elem, f.attr_length, &count_text, &unused);
      flags = count_text == "-1" ? FrameElements::kNull : FrameElements::kNested;
    } else if (!frame_scalar(elem, &payload)) {
      flags = FrameElements::kNull;
    }
    out->items.push_back(payload);
    out->types.push_back(f.type);
    out->flags.push_back(flags);
    pos += f.length;
  }
  return true;
}

}  // namespace dp::resp
