// Fuzz target for dp::resp::RequestParser.
// Input: byte 0 picks the limits and the split pattern, the rest is a client
// stream.  Invariants: every ok/skip consumes 1..remaining bytes; argument
// views of a multibulk request lie inside its span; feeding the stream in
// pieces (in a moving buffer) gives exactly what feeding it whole gives; a
// parsed request re-encoded parses back to the same arguments.
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/resp/encoder.h"
#include "proxy/resp/request_parser.h"

using namespace dp::resp;

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_request_parser: invariant broken: %s\n", what);
    std::abort();
  }
}

// Parses `stream` delivered in pieces of the given sizes (0: all at once).
std::vector<std::string> run(std::string_view stream, RequestLimits limits, uint32_t split_seed) {
  RequestParser parser(limits);
  Request req;
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
      const std::string moved = buf;  // a new address on every call
      const ParseStatus st = parser.parse(moved, &req);
      if (st == ParseStatus::incomplete) break;
      if (st == ParseStatus::error) {
        check(!parser.error().empty(), "error without text");
        got.push_back("E" + parser.error());
        return got;
      }
      check(req.consumed > 0 && req.consumed <= moved.size(), "consumed out of range");
      std::string rec = (st == ParseStatus::ok ? "O" : "S") + std::to_string(req.consumed);
      if (st == ParseStatus::ok) {
        check(!req.args.empty(), "ok without arguments");
        for (std::string_view a : req.args) {
          if (!req.is_inline) {
            check(a.data() >= moved.data() && a.data() + a.size() <= moved.data() + req.consumed,
                  "argument view outside the request span");
          }
          rec += "|" + std::string(a);
        }
        std::string encoded;
        append_command_span(&encoded, req.args);
        RequestParser again;
        Request back;
        check(again.parse(encoded, &back) == ParseStatus::ok && back.consumed == encoded.size() &&
                  back.args == req.args,
              "re-encoded request does not parse back");
      } else {
        check(req.args.empty(), "skip with arguments");
      }
      got.push_back(rec);
      buf.erase(0, req.consumed);
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
  RequestLimits limits;
  if (mode & 1) {  // small limits reach every limit path with short inputs
    limits.max_bulk_len = 16;
    limits.max_inline_len = 24;
    limits.max_multibulk_len = 8;
  }
  const auto whole = run(stream, limits, 0);
  const auto pieces = run(stream, limits, 1u + (mode >> 1));
  check(whole == pieces, "piecewise parse differs from whole parse");
  return 0;
}
