// Fuzz target for dp::resp::ReplyFramer, frame_elements and frame_scalar.
// Input: byte 0 picks the limits and the split pattern, the rest is an
// upstream stream.  Invariants: every frame is 1..remaining bytes, its
// attributes are a strict prefix and its type is the byte after them;
// feeding in pieces (in a moving buffer) gives what feeding whole gives;
// frame_elements accepts every non-null aggregate frame and frame_scalar
// every non-null scalar frame.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/resp/reply_framer.h"

using namespace dp::resp;

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_reply_framer: invariant broken: %s\n", what);
    std::abort();
  }
}

bool is_aggregate(char t) { return t == '*' || t == '~' || t == '>' || t == '%'; }

void check_frame(std::string_view frame, const Frame& f) {
  check(f.attr_length < f.length, "attributes not a strict prefix");
  check(f.type == frame[f.attr_length], "type is not the byte after the attributes");
  const std::string_view proper = frame.substr(f.attr_length);
  const bool null = f.type == '_' || proper.substr(0, 3) == "$-1" || proper.substr(0, 3) == "*-1";
  FrameElements e;
  const bool agg = frame_elements(frame, 4, &e);
  check(agg == (is_aggregate(f.type) && !null), "frame_elements disagrees with the frame type");
  if (agg) {
    check(e.items.size() == e.types.size() && e.items.size() == e.flags.size(), "element vectors differ");
    check(e.items.size() <= 4, "more elements than asked");
  }
  std::string_view payload;
  const bool scalar = frame_scalar(frame, &payload);
  check(scalar == (!is_aggregate(f.type) && !null), "frame_scalar disagrees with the frame type");
  if (scalar) {
    check(payload.data() >= frame.data() && payload.data() + payload.size() <= frame.data() + frame.size(),
          "scalar payload outside the frame");
  }
}

std::vector<std::string> run(std::string_view stream, uint64_t max_bulk, size_t max_depth,
                             uint32_t split_seed) {
  ReplyFramer framer(max_bulk, max_depth);
  std::vector<std::string> got;
  std::string buf;
  size_t fed = 0;
  uint32_t rng = split_seed;
  while (fed < stream.size()) {
    size_t piece = stream.size() - fed;
    if (split_seed != 0) {
      rng = rng * 1103515245u + 12345u;
      piece = std::min<size_t>(piece, 1 + (rng >> 16) % 17);
    }
    buf.append(stream.substr(fed, piece));
    fed += piece;
    for (;;) {
      const std::string moved = buf;
      Frame f;
      const FrameStatus st = framer.next(moved, &f);
      if (st == FrameStatus::incomplete) break;
      if (st == FrameStatus::error) {
        check(!framer.error().empty(), "error without text");
        got.push_back("E" + framer.error());
        return got;
      }
      check(f.length > 0 && f.length <= moved.size(), "frame length out of range");
      if (split_seed == 0) check_frame(std::string_view(moved).substr(0, f.length), f);
      got.push_back(std::string(1, f.type) + std::to_string(f.length) + "/" + std::to_string(f.attr_length));
      buf.erase(0, f.length);
    }
  }
  got.push_back("P" + std::to_string(buf.size()));
  return got;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);
  const uint64_t max_bulk = (mode & 1) ? 16 : 1ull << 32;
  const size_t max_depth = (mode & 2) ? 3 : 1u << 16;
  const auto whole = run(stream, max_bulk, max_depth, 0);
  const auto pieces = run(stream, max_bulk, max_depth, 1u + (mode >> 2));
  check(whole == pieces, "piecewise framing differs from whole framing");
  return 0;
}
