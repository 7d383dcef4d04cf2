#include "proxy/resp/value.h"

#include <algorithm>
#include <limits>

namespace dp::resp {
namespace {

enum class Status { ok, incomplete, bad };

class Decoder {
 public:
  Decoder(std::string_view in, std::string* error) : in_(in), error_(error) {}

  Status value(Value* out, int depth) {
    if (depth > kMaxDepth) return fail("nesting deeper than " + std::to_string(kMaxDepth));
    if (pos_ >= in_.size()) return Status::incomplete;
    size_t start = pos_;
    char type = in_[pos_++];
    std::string_view line;
    if (Status s = read_line(&line); s != Status::ok) return s;
    out->str.clear();
    out->elems.clear();
    out->integer = 0;
    switch (type) {
      case '+': out->type = Value::Type::simple; out->str.assign(line); return Status::ok;
      case '-': out->type = Value::Type::error; out->str.assign(line); return Status::ok;
      case ',': out->type = Value::Type::double_; out->str.assign(line); return Status::ok;
      case '(': out->type = Value::Type::bignum; out->str.assign(line); return Status::ok;
      case '_':
        if (!line.empty()) return fail_at(start, "null '_' with a payload");
        out->type = Value::Type::null;
        return Status::ok;
      case '#':
        if (line != "t" && line != "f") return fail_at(start, "boolean is not 't' or 'f'");
        out->type = Value::Type::boolean;
        out->integer = line == "t";
        return Status::ok;
      case ':':
        out->type = Value::Type::integer;
        if (!parse_int(line, &out->integer)) return fail_at(start, "bad integer");
        return Status::ok;
      case '$': return blob(start, line, Value::Type::bulk, out);
      case '!': return blob(start, line, Value::Type::error, out);
      case '=': return blob(start, line, Value::Type::verbatim, out);
      case '*': return aggregate(start, line, Value::Type::array, 1, out, depth);
      case '~': return aggregate(start, line, Value::Type::set, 1, out, depth);
      case '>': return aggregate(start, line, Value::Type::push, 1, out, depth);
      case '%': return aggregate(start, line, Value::Type::map, 2, out, depth);
      case '|': {  // attribute: decode and drop, then the reply it decorates
        Value attr;
        if (Status s = aggregate(start, line, Value::Type::map, 2, &attr, depth); s != Status::ok) return s;
        return value(out, depth);
      }
      default:
        return fail_at(start, std::string("unknown RESP type byte 0x") + hex(type));
    }
  }

  size_t pos() const { return pos_; }

 private:
  Status read_line(std::string_view* line) {
    size_t cr = in_.find('\r', pos_);
    if (cr == std::string_view::npos || cr + 1 >= in_.size()) return Status::incomplete;
    if (in_[cr + 1] != '\n') return fail_at(cr, "CR not followed by LF");
    *line = in_.substr(pos_, cr - pos_);
    pos_ = cr + 2;
    return Status::ok;
  }

  Status blob(size_t start, std::string_view line, Value::Type type, Value* out) {
    int64_t len = 0;
    if (line == "?") return fail_at(start, "streamed strings are not supported");
    if (!parse_int(line, &len) || len < -1) return fail_at(start, "bad length");
    if (len == -1) {
      if (type != Value::Type::bulk) return fail_at(start, "null length on a non-bulk string");
      out->type = Value::Type::null;
      return Status::ok;
    }
    size_t n = static_cast<size_t>(len);
    if (in_.size() - pos_ < n + 2) return Status::incomplete;
    if (in_[pos_ + n] != '\r' || in_[pos_ + n + 1] != '\n')
      return fail_at(pos_ + n, "string not followed by CRLF");
    out->type = type;
    out->str.assign(in_.substr(pos_, n));
    pos_ += n + 2;
    return Status::ok;
  }

  Status aggregate(size_t start, std::string_view line, Value::Type type, int per_entry,
                   Value* out, int depth) {
    int64_t count = 0;
    if (line == "?") return fail_at(start, "streamed aggregates are not supported");
    if (!parse_int(line, &count) || count < -1) return fail_at(start, "bad element count");
    if (count == -1) {
      if (type != Value::Type::array) return fail_at(start, "null count on a non-array aggregate");
      out->type = Value::Type::null;
      return Status::ok;
    }
    // Every element takes at least 3 bytes, so a count larger than that
    // cannot be complete yet; checking first keeps a huge count from
    // allocating before the bytes exist.
    uint64_t n = static_cast<uint64_t>(count) * static_cast<uint64_t>(per_entry);
    if (n > (in_.size() - pos_) / 3) return Status::incomplete;
    out->type = type;
    out->elems.resize(n);
    for (uint64_t i = 0; i < n; ++i) {
      if (Status s = value(&out->elems[i], depth + 1); s != Status::ok) return s;
    }
    return Status::ok;
  }

  static bool parse_int(std::string_view s, int64_t* out) {
    if (s.empty()) return false;
    bool neg = s[0] == '-';
    size_t i = neg || s[0] == '+' ? 1 : 0;
    if (i == s.size()) return false;
    uint64_t v = 0;
    const uint64_t limit = neg ? uint64_t{1} << 63 : uint64_t{std::numeric_limits<int64_t>::max()};
    for (; i < s.size(); ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      unsigned d = static_cast<unsigned>(s[i] - '0');
      if (v > (limit - d) / 10) return false;
      v = v * 10 + d;
    }
    *out = neg ? static_cast<int64_t>(0 - v) : static_cast<int64_t>(v);
    return true;
  }

  static std::string hex(char c) {
    static const char digits[] = "0123456789abcdef";
    unsigned u = static_cast<unsigned char>(c);
    return {digits[u >> 4], digits[u & 15]};
  }

  Status fail_at(size_t offset, const std::string& what) {
    *error_ = "RESP decode: " + what + " at byte offset " + std::to_string(offset);
    return Status::bad;
  }
  Status fail(const std::string& what) { return fail_at(pos_, what); }

  std::string_view in_;
  std::string* error_;
  size_t pos_ = 0;
};

}  // namespace

bool decode_value(std::string_view in, size_t* consumed, Value* out, std::string* error) {
  error->clear();
  Decoder d(in, error);
  Status s = d.value(out, 0);
  if (s != Status::ok) return false;
  *consumed = d.pos();
  return true;
}

}  // namespace dp::resp
