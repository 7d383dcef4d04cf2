// Test helpers: run the request parser / reply framer over a byte stream
// delivered in chunks, the way a socket delivers it, and record what they
// produce, so whole, byte-by-byte and random-split feeding can be compared.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/resp/reply_framer.h"
#include "proxy/resp/request_parser.h"

namespace dp::resp::test {

// One parse result: "ok:<n>:a|b|c", "skip:<n>", "error:<text>".
// The stream ends with "incomplete:<pending bytes>" if bytes are left.
inline std::vector<std::string> parse_stream(std::string_view stream, const std::vector<size_t>& cuts,
                                             RequestLimits limits = {}) {
  RequestParser parser(limits);
  Request req;
  std::vector<std::string> got;
  std::string buf;
  size_t fed = 0;
  auto drain = [&]() -> bool {
    for (;;) {
      // A fresh copy each time: the parser must not keep pointers.
      std::string moved = buf;
      ParseStatus st = parser.parse(moved, &req);
      if (st == ParseStatus::incomplete) return true;
      if (st == ParseStatus::error) {
        got.push_back("error:" + parser.error());
        return false;
      }
      std::string rec = (st == ParseStatus::ok ? "ok:" : "skip:") + std::to_string(req.consumed);
      if (st == ParseStatus::ok) {
        rec += ":";
        for (size_t i = 0; i < req.args.size(); ++i) rec += (i ? "|" : "") + std::string(req.args[i]);
        if (req.is_inline) rec += ":inline";
      }
      got.push_back(rec);
      buf.erase(0, req.consumed);
    }
  };
  std::vector<size_t> all = cuts;
  all.push_back(stream.size());
  for (size_t cut : all) {
    if (cut < fed) continue;
    buf.append(stream.substr(fed, cut - fed));
    fed = cut;
    if (!drain()) return got;
  }
  if (!buf.empty()) got.push_back("incomplete:" + std::to_string(buf.size()));
  return got;
}

// One frame result: "<type>:<length>:<attr_length>", or "error:<text>".
inline std::vector<std::string> frame_stream(std::string_view stream, const std::vector<size_t>& cuts,
                                             uint64_t max_bulk = 1ull << 32) {
  ReplyFramer framer(max_bulk);
  std::vector<std::string> got;
  std::string buf;
  size_t fed = 0;
  std::vector<size_t> all = cuts;
  all.push_back(stream.size());
  for (size_t cut : all) {
    if (cut < fed) continue;
    buf.append(stream.substr(fed, cut - fed));
    fed = cut;
    for (;;) {
      std::string moved = buf;
      Frame f;
      FrameStatus st = framer.next(moved, &f);
      if (st == FrameStatus::incomplete) break;
      if (st == FrameStatus::error) {
        got.push_back("error:" + framer.error());
        return got;
      }
      got.push_back(std::string(1, f.type) + ":" + std::to_string(f.length) + ":" +
                    std::to_string(f.attr_length));
      buf.erase(0, f.length);
    }
  }
  if (!buf.empty()) got.push_back("incomplete:" + std::to_string(buf.size()));
  return got;
}

inline std::vector<size_t> every_byte(size_t n) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < n; ++i) cuts.push_back(i);
  return cuts;
}

inline std::vector<size_t> random_cuts(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<size_t> cuts;
  size_t at = 0;
  while (n > 0 && at < n) {
    at += 1 + rng() % 23;
    if (at < n) cuts.push_back(at);
  }
  return cuts;
}

}  // namespace dp::resp::test
