#include "proxy/upstream/rdb_receiver.h"

#include <algorithm>
#include <cstring>

#include "proxy/base/decimal.h"

namespace dp::upstream {

void RdbReceiver::reset() {
  state_ = State::preamble;
  form_ = Form::unknown;
  line_.clear();
  left_ = 0;
  payload_bytes_ = 0;
  tail_len_ = 0;
  last_error_.clear();
}

RdbReceiver::Result RdbReceiver::fail(Result r, std::string why) {
  state_ = State::error;
  last_error_ = why;
  r.status = Status::error;
  r.error = std::move(why);
  return r;
}

RdbReceiver::Result RdbReceiver::feed(std::string_view in) {
  Result r;
  if (state_ == State::done) return r.status = Status::done, r;
  if (state_ == State::error) return r.status = Status::error, r.error = last_error_, r;
  if (state_ == State::preamble) return preamble(in, r);
  if (state_ == State::marked) return marked(in, r);
  size_t take = static_cast<size_t>(std::min<uint64_t>(in.size(), left_));
  left_ -= take;
  payload_bytes_ += take;
  r.consumed = take;
  r.data = in.substr(0, take);
  if (left_ == 0) state_ = State::done, r.status = Status::done;
  return r;
}

// Lines until the one that says how the payload is framed; then the payload
// bytes of the same input.
RdbReceiver::Result RdbReceiver::preamble(std::string_view in, Result r) {
  while (state_ == State::preamble) {
    size_t nl = in.find('\n', r.consumed);
    if (nl == std::string_view::npos) {
      line_.append(in.substr(r.consumed));
      r.consumed = in.size();
      if (line_.size() > max_line_)
        return fail(r, "protocol error: reply line longer than " + std::to_string(max_line_ / 1024) + " KiB");
      return r;
    }
    line_.append(in.substr(r.consumed, nl - r.consumed));
    r.consumed = nl + 1;
    std::string line;
    line.swap(line_);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;  // keep-alive newline while the primary prepares
    if (line[0] == '-') return fail(r, "the server aborted the full sync: " + line);
    std::string_view l = line;
    if (l.substr(0, 5) == "$EOF:" && l.size() == 5 + kMarkLen) {
      std::memcpy(mark_.data(), l.data() + 5, kMarkLen);
      form_ = Form::eof_mark;
      state_ = State::marked;
    } else if (l[0] == '$' && parse_u64(l.substr(1), &left_)) {
      form_ = Form::sized;
      state_ = left_ == 0 ? State::done : State::sized;
    } else {
      return fail(r, "protocol error: expected the RDB preamble ($<len> or $EOF:<mark>), got '" +
                         std::string(l.substr(0, 80)) + "'");
    }
  }
  if (state_ == State::done) return r.status = Status::done, r;
  Result rest = feed(in.substr(r.consumed));
  rest.consumed += r.consumed;
  return rest;
}

// The last kMarkLen bytes received are held back; what they push out is
// released.  Released bytes come first from the old hold-back (copied to
// out_, since tail_ is refilled here), then from the input.
RdbReceiver::Result RdbReceiver::marked(std::string_view in, Result r) {
  const size_t n = in.size();
  r.consumed = n;
  if (n >= kMarkLen) {
    std::memcpy(out_.data(), tail_.data(), tail_len_);
    r.held = std::string_view(out_.data(), tail_len_);
    r.data = in.substr(0, n - kMarkLen);
    std::memcpy(tail_.data(), in.data() + n - kMarkLen, kMarkLen);
    tail_len_ = kMarkLen;
  } else {
    const size_t total = tail_len_ + n;
    const size_t out = total > kMarkLen ? total - kMarkLen : 0;  // < tail_len_: all from the old tail
    std::memcpy(out_.data(), tail_.data(), out);
    r.held = std::string_view(out_.data(), out);
    std::memmove(tail_.data(), tail_.data() + out, tail_len_ - out);
    std::memcpy(tail_.data() + (tail_len_ - out), in.data(), n);
    tail_len_ = total - out;
  }
  payload_bytes_ += r.held.size() + r.data.size();
  if (tail_len_ == kMarkLen && tail_ == mark_) state_ = State::done, r.status = Status::done;
  return r;
}

}  // namespace dp::upstream
