// Client request parser: RESP arrays of bulk strings and inline commands,
// with Valkey's limits and Valkey's exact protocol error texts
// (networking.c: processMultibulkBuffer / processInlineBuffer).
//
// Pure and resumable: no I/O, no libuv.  The caller owns the input bytes; a
// request that is incomplete is continued on the next call with the same
// bytes plus more (the buffer may have moved: progress is kept as offsets),
// so a request arriving in many pieces costs O(its size) in total.
//
// Byte-for-byte the parser accepts what Valkey accepts, including Valkey's
// leniencies: the byte after a header's CR and the two bytes after a bulk
// payload are skipped without being checked, and a header line is searched
// like strchr() would (a NUL byte hides the CR behind it).
//
// One parser per connection; not thread-safe (loop thread only).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dp::resp {

struct RequestLimits {
  uint64_t max_bulk_len = 512ull << 20;     // proto-max-bulk-len
  uint64_t max_inline_len = 64ull << 10;    // PROTO_INLINE_MAX_SIZE (also header lines)
  uint64_t max_multibulk_len = 1024 * 1024; // elements of one request
};

enum class ParseStatus { ok, incomplete, skip, error };

struct Request {
  // Views into the caller's input (multibulk) or into the parser's scratch
  // (inline commands, whose quoting is decoded).  Valid until the next
  // parse() call or until the input buffer changes.
  std::vector<std::string_view> args;
  size_t consumed = 0;  // exact bytes of this request at the start of input
  bool is_inline = false;
};

class RequestParser {
 public:
  explicit RequestParser(RequestLimits limits = {});

  // Looks at the request starting at input[0].
  //  ok: *out filled; out->consumed bytes form the request.
  //  incomplete: call again with the same bytes plus more.
  //  skip: out->consumed bytes carry no request (empty inline line, "*0",
  //        "*-1"...): drop them, no reply.
  //  error: protocol error; error() has Valkey's text without '-' and CRLF.
  //        The parser stays in error until reset().
  // After ok/skip the parser is ready for the next request (which starts at
  // input[out->consumed], passed as the new input[0]).
  // out->args keeps its capacity across calls: reuse one Request.
  ParseStatus parse(std::string_view input, Request* out);

  const std::string& error() const { return error_; }
  void reset();  // forget progress and any error
  const RequestLimits& limits() const { return limits_; }

 private:
  enum class Stage { start, inline_line, mbulk_count, bulk_header, bulk_data, failed };

  ParseStatus parse_inline(std::string_view input, Request* out);
  ParseStatus parse_multibulk(std::string_view input, Request* out);
  ParseStatus fail(std::string text);
  // Finds the CR (or LF for inline) ending the line that starts at `from`,
  // resuming the scan at scan_; returns npos when not found yet.  A NUL
  // byte stops the scan for good, like strchr() in Valkey.
  size_t find_line_end(std::string_view input, size_t from, char terminator);
  void finish_request();

  RequestLimits limits_;
  Stage stage_ = Stage::start;
  size_t pos_ = 0;       // next unparsed byte (offset in input)
  size_t scan_ = 0;      // where the current line search resumes
  bool scan_hit_nul_ = false;
  uint64_t remaining_ = 0;  // bulk elements still expected
  uint64_t bulk_len_ = 0;   // length of the bulk being read (stage bulk_data)
  std::vector<std::pair<size_t, size_t>> spans_;  // (offset, length) per arg
  std::string scratch_;  // decoded inline arguments
  std::string error_;
};

// Valkey's string2ll(): strict decimal, optional '-', no '+', no leading
// zeros, no spaces, must fit in int64.  Exposed for tests and the framer.
bool parse_strict_int64(std::string_view s, int64_t* out);

// Valkey's sdssplitargs(): splits an inline line on spaces with "..." (with
// \n \r \t \b \a \xHH escapes) and '...' (with \' only) quoting.  Appends
// the decoded arguments to *scratch and their (offset, length) to *spans.
// Returns false on unbalanced quotes or a closing quote not followed by a
// space or the end of the line.
bool split_inline_args(std::string_view line, std::string* scratch,
                       std::vector<std::pair<size_t, size_t>>* spans);

}  // namespace dp::resp
