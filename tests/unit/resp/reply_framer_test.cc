#include "proxy/resp/reply_framer.h"

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

#include "unit/resp/feed.h"

using namespace dp::resp;
using dp::resp::test::every_byte;
using dp::resp::test::frame_stream;
using dp::resp::test::random_cuts;
using Strings = std::vector<std::string>;

namespace {

Strings frame_all_ways(std::string_view s, uint64_t max_bulk = 1ull << 32) {
  Strings whole = frame_stream(s, {}, max_bulk);
  CHECK(frame_stream(s, every_byte(s.size()), max_bulk) == whole);
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    CHECK(frame_stream(s, random_cuts(s.size(), seed), max_bulk) == whole);
  }
  return whole;
}

std::string expect(const std::string& frame, size_t attr = 0) {
  return std::string(1, frame[attr]) + ":" + std::to_string(frame.size()) + ":" + std::to_string(attr);
}

const std::string kAttribute =
    "|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n";

// Every RESP2 and RESP3 type, one frame each.
const std::vector<std::string> kFrames = {
    "+OK\r\n",
    "-ERR unknown command 'x'\r\n",
    ":-42\r\n",
    "$5\r\nhe\r\no\r\n",  // CRLF inside a payload is data
    "$0\r\n\r\n",
    "$-1\r\n",
    "*-1\r\n",
    "*0\r\n",
    "*3\r\n:1\r\n$1\r\na\r\n*2\r\n+x\r\n$-1\r\n",
    "_\r\n",
    ",3.14\r\n",
    ",inf\r\n",
    "#t\r\n",
    "!21\r\nSYNTAX invalid syntax\r\n",
    "=15\r\ntxt:Some string\r\n",
    "(3492890328409238509324850943850943825024385\r\n",
    "%2\r\n+first\r\n:1\r\n+second\r\n*2\r\n:2\r\n:3\r\n",
    "%0\r\n",
    "~3\r\n+a\r\n:1\r\n#f\r\n",
    ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n",
    "*2\r\n|1\r\n+ttl\r\n:3600\r\n+a\r\n+b\r\n",  // an attribute before an element is no element
    "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",
};

}  // namespace

TEST_CASE("every RESP2 and RESP3 type frames whole, byte by byte and in random splits") {
  std::string stream;
  Strings expected;
  for (const auto& f : kFrames) {
    stream += f;
    expected.push_back(expect(f));
  }
  CHECK(frame_all_ways(stream) == expected);
  for (const auto& f : kFrames) {
    CAPTURE(f);
    CHECK(frame_all_ways(f) == Strings{expect(f)});
  }
}

TEST_CASE("an attribute belongs to the reply that follows it") {
  const std::string reply = "*2\r\n:2039123\r\n:9543892\r\n";
  const std::string frame = kAttribute + reply;
  CHECK(frame_all_ways(frame + "+OK\r\n") == Strings{expect(frame, kAttribute.size()), "+:5:0"});
  // Two attributes in a row, and an empty one, still prefix one reply.
  const std::string two = kAttribute + "|0\r\n" + "+OK\r\n";
  CHECK(frame_all_ways(two) == Strings{expect(two, kAttribute.size() + 4)});
  Frame f;
  ReplyFramer framer;
  REQUIRE(framer.next(frame, &f) == FrameStatus::ok);
  CHECK(f.type == '*');
  CHECK_FALSE(f.is_push());
}

TEST_CASE("push frames and errors are told apart") {
  ReplyFramer framer;
  Frame f;
  REQUIRE(framer.next(">2\r\n$10\r\ninvalidate\r\n_\r\n", &f) == FrameStatus::ok);
  CHECK(f.is_push());
  REQUIRE(framer.next("!3\r\nERR\r\n", &f) == FrameStatus::ok);
  CHECK(f.is_error());
  REQUIRE(framer.next("-ERR x\r\n", &f) == FrameStatus::ok);
  CHECK(f.is_error());
  REQUIRE(framer.next("+OK\r\n", &f) == FrameStatus::ok);
  CHECK_FALSE(f.is_error());
}

TEST_CASE("incomplete frames stay incomplete until their last byte") {
  for (const auto& f : kFrames) {
    CAPTURE(f);
    ReplyFramer framer;
    Frame out;
    for (size_t n = 0; n < f.size(); ++n) {
      REQUIRE(framer.next(std::string_view(f).substr(0, n), &out) == FrameStatus::incomplete);
    }
    REQUIRE(framer.next(f, &out) == FrameStatus::ok);
    CHECK(out.length == f.size());
  }
}

TEST_CASE("malformed replies are errors naming the cause and offset") {
  auto err = [](std::string s, uint64_t max_bulk = 1ull << 32) {
    Strings got = frame_all_ways(s, max_bulk);
    REQUIRE(!got.empty());
    return got.back();
  };
  CHECK(err("x\r\n") == "error:bad reply type byte 'x' at offset 0");
  CHECK(err("*2\r\n:1\r\n\x01") == "error:bad reply type byte 0x01 at offset 8");
  CHECK(err("$3\r\nfooXY") == "error:blob not followed by CRLF at offset 7");
  CHECK(err("+OK\rX") == "error:CR not followed by LF at offset 3");
  CHECK(err("$-2\r\n") == "error:bad length '-2' after '$' at offset 0");
  CHECK(err("%-1\r\n") == "error:bad length '-1' after '%' at offset 0");
  CHECK(err("*abc\r\n") == "error:bad length 'abc' after '*' at offset 0");
  CHECK(err("$?\r\n") == "error:bad length '?' after '$' at offset 0");  // streamed RESP3
  CHECK(err("$11\r\n", 10) == "error:bulk length 11 over the limit 10 at offset 0");
  ReplyFramer shallow(1ull << 32, 2);
  Frame f;
  CHECK(shallow.next("*1\r\n*1\r\n:1\r\n", &f) == FrameStatus::ok);
  CHECK(shallow.next("*1\r\n*1\r\n*1\r\n:1\r\n", &f) == FrameStatus::error);
  CHECK(shallow.error() == "reply nested deeper than 2 at offset 8");
  CHECK(shallow.next("+OK\r\n", &f) == FrameStatus::error);  // sticky
  shallow.reset();
  CHECK(shallow.next("+OK\r\n", &f) == FrameStatus::ok);
}

TEST_CASE("a 1M-element array reply fed in 16 KiB pieces frames in linear time") {
  const size_t n = 1024 * 1024;
  std::string in = "*" + std::to_string(n) + "\r\n";
  for (size_t i = 0; i < n; ++i) in += (i % 2) ? "$1\r\nx\r\n" : ":7\r\n";
  ReplyFramer framer;
  Frame f;
  std::string buf;
  FrameStatus st = FrameStatus::incomplete;
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t off = 0; off < in.size(); off += 16384) {
    buf.append(in, off, 16384);
    st = framer.next(buf, &f);
    if (off + 16384 < in.size()) REQUIRE(st == FrameStatus::incomplete);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  REQUIRE(st == FrameStatus::ok);
  CHECK(f.length == in.size());
  MESSAGE("1M-element reply, " << in.size() << " bytes: " << secs << " s");
  CHECK(secs < 3.0);
}

TEST_CASE("a 64 MiB bulk reply fed in 16 KiB pieces frames in linear time") {
  const size_t len = 64u << 20;
  std::string buf = "$" + std::to_string(len) + "\r\n";
  const size_t total = buf.size() + len + 2;
  buf.reserve(total);
  ReplyFramer framer;
  Frame f;
  const std::string chunk(16384, 'r');
  const auto t0 = std::chrono::steady_clock::now();
  while (buf.size() + chunk.size() < total) {
    buf += chunk;
    REQUIRE(framer.next(buf, &f) == FrameStatus::incomplete);
  }
  buf.append(total - 2 - buf.size(), 'r');
  buf += "\r\n";
  REQUIRE(framer.next(buf, &f) == FrameStatus::ok);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(f.length == total);
  MESSAGE("64 MiB bulk reply in 16 KiB pieces: " << secs << " s");
  CHECK(secs < 3.0);
}
