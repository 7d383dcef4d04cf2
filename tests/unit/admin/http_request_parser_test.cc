#include "proxy/admin/http_request_parser.h"

#include <doctest/doctest.h>

#include <string>

using dp::admin::HttpRequestParser;
using Status = HttpRequestParser::Status;

namespace {

// Feeds `input` in pieces of `step` bytes; returns the status when the
// parser stops needing input, and the bytes consumed in total.
Status feed_in_steps(HttpRequestParser& p, const std::string& input, size_t step, size_t* consumed) {
  *consumed = 0;
  while (*consumed < input.size()) {
    size_t n = std::min(step, input.size() - *consumed), used = 0;
    Status s = p.feed(input.data() + *consumed, n, &used);
    *consumed += used;
    if (s != Status::need_more) return s;
  }
  return Status::need_more;
}

}  // namespace

TEST_CASE("a GET request fed one byte at a time yields method, target, authorization, keep-alive") {
  const std::string req =
      "GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAuthoriZation: Bearer s3cret\r\nX-Other: y\r\n\r\n";
  for (size_t step : {size_t{1}, size_t{2}, size_t{7}, req.size()}) {
    HttpRequestParser p(8192);
    size_t consumed = 0;
    REQUIRE(feed_in_steps(p, req, step, &consumed) == Status::complete);
    CHECK(consumed == req.size());
    CHECK(p.request().method == "GET");
    CHECK(p.request().target == "/metrics?x=1");
    CHECK(p.request().path() == "/metrics");
    CHECK(p.request().authorization == "Bearer s3cret");
    CHECK(p.request().keep_alive);
  }
}

TEST_CASE("pipelined requests are returned one at a time, the second after next()") {
  const std::string one = "POST /checkpoint HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
  const std::string two = "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n";
  const std::string both = one + two;
  HttpRequestParser p(8192);
  size_t used = 0;
  REQUIRE(p.feed(both.data(), both.size(), &used) == Status::complete);
  CHECK(used == one.size());
  CHECK(p.request().method == "POST");
  CHECK(p.request().body == "abc");
  size_t again = 0;
  CHECK(p.feed(both.data() + used, both.size() - used, &again) == Status::complete);
  CHECK(again == 0);  // still holding the first request
  p.next();
  REQUIRE(p.feed(both.data() + used, both.size() - used, &again) == Status::complete);
  CHECK(again == two.size());
  CHECK(p.request().path() == "/healthz");
  CHECK(p.request().body.empty());
  CHECK_FALSE(p.request().keep_alive);
}

TEST_CASE("HTTP/1.0 closes unless it asks for keep-alive") {
  HttpRequestParser p(8192);
  const std::string a = "GET /healthz HTTP/1.0\r\n\r\n";
  size_t used = 0;
  REQUIRE(p.feed(a.data(), a.size(), &used) == Status::complete);
  CHECK_FALSE(p.request().keep_alive);
  HttpRequestParser q(8192);
  const std::string b = "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
  REQUIRE(q.feed(b.data(), b.size(), &used) == Status::complete);
  CHECK(q.request().keep_alive);
}

TEST_CASE("malformed requests are bad_request with llhttp's reason, and stay failed") {
  for (const std::string& bad : {std::string("GARBAGE\r\n\r\n"), std::string("GET / HTTP/9.9\r\n\r\n"),
                                std::string("GET /\x01 HTTP/1.1\r\n\r\n"),
                                std::string("GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n"),
                                std::string("GET / HTTP/1.1\r\nBad Header\r\n\r\n")}) {
    CAPTURE(bad);
    HttpRequestParser p(8192);
    size_t used = 0;
    CHECK(feed_in_steps(p, bad, 3, &used) == Status::bad_request);
    CHECK_FALSE(p.error().empty());
    const std::string good = "GET /healthz HTTP/1.1\r\n\r\n";
    CHECK(p.feed(good.data(), good.size(), &used) == Status::bad_request);
  }
}

TEST_CASE("headers beyond max_request_bytes are too_large, whatever the split") {
  std::string req = "GET /metrics HTTP/1.1\r\n";
  while (req.size() < 300) req += "X-Pad: aaaaaaaaaaaaaaaaaaaa\r\n";
  req += "\r\n";
  for (size_t step : {size_t{1}, size_t{50}, req.size()}) {
    HttpRequestParser p(256);
    size_t used = 0;
    CHECK(feed_in_steps(p, req, step, &used) == Status::too_large);
    CHECK(used <= 257);
  }
  HttpRequestParser fits(static_cast<size_t>(req.size()));
  size_t used = 0;
  CHECK(feed_in_steps(fits, req, 1, &used) == Status::complete);
}

TEST_CASE("a declared body larger than the limit is refused before any of it arrives") {
  HttpRequestParser p(1024);
  const std::string head = "POST /checkpoint HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n";
  size_t used = 0;
  CHECK(p.feed(head.data(), head.size(), &used) == Status::too_large);
}

TEST_CASE("a chunked body over the limit is too_large") {
  HttpRequestParser p(200);
  std::string req = "POST /checkpoint HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 20; ++i) req += "a\r\n0123456789\r\n";
  req += "0\r\n\r\n";
  size_t used = 0;
  CHECK(feed_in_steps(p, req, 16, &used) == Status::too_large);
}
