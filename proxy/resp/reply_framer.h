// Reply framer: finds where one upstream reply ends, for every RESP2 and
// RESP3 type, without building any object.
//
//   simple lines   + - : _ , # (         "<type><text>\r\n"
//   blobs          $ ! =                  "<type><len>\r\n<len bytes>\r\n" ($-1: null)
//   aggregates     * ~ >  (n elements), % | (2n elements)   (*-1: null)
//
// An attribute ('|') precedes the reply it annotates and belongs to it: it
// is counted in Frame::length, and attributes before nested elements are
// skipped without counting as elements.  Push frames ('>') are frames of
// their own that answer no request.  Streamed RESP3 ("$?", "*?") is not
// produced by Valkey and is reported as an error.
//
// Pure and resumable like the request parser: nested aggregates are kept as
// a stack of remaining counts and progress as offsets, so re-calling with the
// same bytes plus more continues where it stopped (O(total) work).
// One framer per upstream connection; not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dp::resp {

struct Frame {
  size_t length = 0;       // total bytes, including leading attribute(s)
  size_t attr_length = 0;  // bytes of leading attributes; the reply proper starts here
  char type = 0;           // first byte of the reply proper
  bool is_push() const { return type == '>'; }
  bool is_error() const { return type == '-' || type == '!'; }
};

enum class FrameStatus { ok, incomplete, error };

class ReplyFramer {
 public:
  explicit ReplyFramer(uint64_t max_bulk_len = 1ull << 32, size_t max_depth = 1u << 16);

  // Looks at the frame starting at input[0].
  //  ok: *out filled; the next frame starts at input[out->length].
  //  incomplete: call again with the same bytes plus more.
  //  error: the stream is not valid RESP; error() names the cause and the
  //         offset (from input[0]).  Sticky until reset().
  FrameStatus next(std::string_view input, Frame* out);
  const std::string& error() const { return error_; }
  void reset();

 private:
  struct Level {
    uint64_t remaining;  // elements still expected at this level
    bool attribute;      // an attribute's elements: completing it adds no element
  };
  FrameStatus fail(std::string text);
  // Marks one complete element at the current depth, popping finished
  // aggregates; returns true when the top-level item is complete.
  bool element_done();

  uint64_t max_bulk_len_;
  size_t max_depth_;
  size_t pos_ = 0;          // next unparsed byte
  size_t scan_ = 0;         // where the current line's CR search resumes
  size_t blob_end_ = 0;     // nonzero: waiting for a blob ending here
  size_t attr_length_ = 0;  // bytes of completed leading attributes
  std::vector<Level> stack_;
  std::string error_;
  bool failed_ = false;
};

// Top-level elements of an aggregate frame (* > ~ % |, after any leading
// attributes), up to `max` of them.  `count` is the declared count (pairs
// for % and |; items then holds both keys and values).  A scalar element
// yields its payload as with frame_scalar(); a nested aggregate or a null
// yields an empty view, told apart by nested()/is_null().  Returns false if
// the frame is not a complete aggregate (nulls included).
struct FrameElements {
  size_t count = 0;
  std::vector<std::string_view> items;
  std::vector<char> types;     // type byte of each item (after its attributes)
  std::vector<uint8_t> flags;  // kNested | kNull per item
  static constexpr uint8_t kNested = 1, kNull = 2;
  bool nested(size_t i) const { return (flags[i] & kNested) != 0; }
  bool is_null(size_t i) const { return (flags[i] & kNull) != 0; }
};
bool frame_elements(std::string_view frame, size_t max, FrameElements* out);

// Payload of a scalar frame, after any leading attributes: the text of a
// simple line (+ - : , # ( ), the bytes of a blob ($ !), the text of a
// verbatim string (=) without its "xxx:" format prefix.  False for
// aggregates, nulls (_ $-1) and malformed input.
bool frame_scalar(std::string_view frame, std::string_view* out);

}  // namespace dp::resp
