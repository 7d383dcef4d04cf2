// Fuzz target for the admin server's request path: HttpRequestParser (llhttp)
// then route_admin_request and serialize, as a connection runs them.
// Input: byte 0 picks the size limit (bits 0-1), a canned request start
// prepended so mutations reach headers and bodies (bits 6-7), and the split
// pattern (bits 2-5); the rest is what a client sends.
// Invariants: consumed never exceeds what was given; a complete request
// consumed at least one byte and at most max_request_bytes; the stream fed in
// pieces yields exactly the requests and final status of the whole stream;
// every routed reply has a known status and serializes to an HTTP/1.1 head.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/admin/admin_router.h"
#include "proxy/admin/http_request_parser.h"
#include "proxy/admin/http_response.h"

using namespace dp::admin;

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_admin_http: invariant broken: %s\n", what);
    std::abort();
  }
}

constexpr size_t kLimits[] = {64, 256, 1024, 8192};
constexpr std::string_view kPrefixes[] = {
    "",
    "GET /metrics HTTP/1.1\r\n",
    "POST /checkpoint HTTP/1.1\r\nContent-Length: 5\r\n\r\n",
    "POST /checkpoint HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
};

const AdminHandlers& handlers() {
  static const AdminHandlers h{
      [] { return std::string("m\n"); },
      [](std::string* reason) {
        *reason = "fuzz";
        return false;
      },
      [] { return std::string("{}"); },
      [](std::string* message) {
        *message = "x";
        return true;
      },
  };
  return h;
}

struct Outcome {
  std::vector<std::string> requests;  // method|target|authorization|body|keep-alive
  HttpRequestParser::Status last = HttpRequestParser::Status::need_more;
};

// Feeds `stream` in pieces of 1..16 bytes drawn from `split` (0: whole).
Outcome run(std::string_view stream, size_t limit, uint32_t split) {
  HttpRequestParser parser(limit);
  Outcome out;
  size_t at = 0;
  uint32_t rng = split * 2654435761u + 1;
  while (at < stream.size()) {
    size_t piece = stream.size() - at;
    if (split != 0) {
      rng = rng * 1103515245u + 12345u;
      piece = std::min<size_t>(piece, 1 + (rng >> 16) % 16);
    }
    size_t fed = 0;
    while (fed < piece) {
      size_t used = 0;
      const auto status = parser.feed(stream.data() + at + fed, piece - fed, &used);
      check(used <= piece - fed, "consumed more than given");
      fed += used;
      out.last = status;
      if (status == HttpRequestParser::Status::complete) {
        const HttpRequest& r = parser.request();
        out.requests.push_back(r.method + "|" + r.target + "|" + r.authorization + "|" + r.body + "|" +
                               (r.keep_alive ? "1" : "0"));
        check(r.target.size() + r.body.size() + r.authorization.size() <= limit, "request over the limit");
        const HttpResponse resp = route_admin_request(r, handlers(), RouteOptions{"tok", false});
        check(std::string_view(http_reason_phrase(resp.status)) != "Unknown", "unknown status");
        check(serialize(resp, r.keep_alive).rfind("HTTP/1.1 ", 0) == 0, "bad response head");
        parser.next();
        if (!r.keep_alive) return out;  // the connection closes after this reply
        continue;
      }
      if (status != HttpRequestParser::Status::need_more) return out;
      check(fed == piece, "need_more without consuming everything");
    }
    at += piece;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const size_t limit = kLimits[mode & 3];
  std::string stream(kPrefixes[mode >> 6]);
  stream.append(reinterpret_cast<const char*>(data + 1), size - 1);
  const Outcome whole = run(stream, limit, 0);
  const Outcome split = run(stream, limit, 1 + ((mode >> 2) & 15));
  check(whole.requests == split.requests, "split input parsed to other requests");
  check(whole.last == split.last, "split input ended in another state");
  return 0;
}
