// The RDB of a full sync as the upstream sends it after "+FULLRESYNC":
//
//   "\n"*  ( "$" <len> "\r\n" <len bytes>                  disk-based sync
//          | "$EOF:" <40-byte mark> "\r\n" <rdb> <mark>    diskless sync )
//        | "-" <error> "\r\n"                              the primary gave up
//
// The newlines are the primary's keep-alives while it prepares the RDB.  A
// sized payload ends after <len> bytes; what follows it is the replication
// stream.  A diskless payload ends with the mark, which is never passed on:
// the last 40 bytes received are held back, since they may be the mark.
// Like the server's own replica, the receiver checks for the mark at the end
// of each feed(), not inside it: the primary sends nothing after the mark
// until the replica acknowledges, so the mark always ends a read.
//
// Pure and resumable (STYLE.md 5): feed bytes in any split, get payload
// slices; no I/O.  Any thread, one at a time.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace dp::upstream {

class RdbReceiver {
 public:
  static constexpr size_t kMarkLen = 40;
  enum class Status {
    more,   // everything fed was used; feed more
    done,   // the payload is complete; bytes after `consumed` are the stream
    error,  // not an RDB transfer (or the primary's error line): see `error`
  };
  struct Result {
    Status status = Status::more;
    size_t consumed = 0;    // bytes of the input used
    // Payload released by this call, in order: `held` (bytes held back by
    // earlier calls; valid until the next feed() or reset()), then `data`
    // (a slice of the input).  Either may be empty.
    std::string_view held;
    std::string_view data;
    std::string error;      // for Status::error: the cause, quoting the input
  };
  enum class Form { unknown, sized, eof_mark };

  // `max_line`: the longest preamble line accepted (keep-alives included).
  explicit RdbReceiver(size_t max_line = 64 * 1024) : max_line_(max_line) {}

  // Starts over, for the next full sync.
  void reset();
  // After `done` or `error`, feed() uses nothing and repeats the status.
  Result feed(std::string_view in);

  Form form() const { return form_; }
  uint64_t payload_bytes() const { return payload_bytes_; }  // released so far

 private:
  enum class State { preamble, sized, marked, done, error };
  Result preamble(std::string_view in, Result r);
  Result fail(Result r, std::string why);
  Result marked(std::string_view in, Result r);

  size_t max_line_;
  State state_ = State::preamble;
  Form form_ = Form::unknown;
  std::string line_;  // partial preamble line
  uint64_t left_ = 0;  // sized: payload bytes still expected
  uint64_t payload_bytes_ = 0;
  std::array<char, kMarkLen> mark_{};
  std::array<char, kMarkLen> tail_{};  // held back: may be the mark
  size_t tail_len_ = 0;
  std::array<char, kMarkLen> out_{};   // what `held` points at
  std::string last_error_;
};

}  // namespace dp::upstream
