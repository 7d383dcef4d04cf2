#include "proxy/resp/request_parser.h"

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

#include "unit/resp/feed.h"

using namespace dp::resp;
using dp::resp::test::every_byte;
using dp::resp::test::parse_stream;
using dp::resp::test::random_cuts;
using Strings = std::vector<std::string>;

namespace {

// Same result whole, byte by byte, and in 20 random splits.
Strings parse_all_ways(std::string_view s, RequestLimits limits = {}) {
  Strings whole = parse_stream(s, {}, limits);
  CHECK(parse_stream(s, every_byte(s.size()), limits) == whole);
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    CHECK(parse_stream(s, random_cuts(s.size(), seed), limits) == whole);
  }
  return whole;
}

std::string one_error(std::string_view s, RequestLimits limits = {}) {
  RequestParser p(limits);
  Request r;
  ParseStatus st = p.parse(s, &r);
  return st == ParseStatus::error ? p.error() : "status " + std::to_string(static_cast<int>(st));
}

}  // namespace

TEST_CASE("a multibulk request yields views of its arguments and its exact span") {
  const std::string in = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n*1\r\n$4\r\nPING\r\n";
  RequestParser p;
  Request r;
  REQUIRE(p.parse(in, &r) == ParseStatus::ok);
  CHECK(r.consumed == 31);
  CHECK_FALSE(r.is_inline);
  REQUIRE(r.args.size() == 3);
  CHECK(r.args[0] == "SET");
  CHECK(r.args[2] == "hello");
  CHECK(r.args[2].data() == in.data() + 24);  // a view, not a copy
  REQUIRE(p.parse(std::string_view(in).substr(r.consumed), &r) == ParseStatus::ok);
  CHECK(r.args[0] == "PING");
}

TEST_CASE("a pipelined mix parses the same whole, byte by byte and in random splits") {
  const std::string in =
      "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n"
      "PING\r\n"
      "\r\n"
      "*0\r\n"
      "set k \"a b\"\n"
      "*-1\r\n"
      "   \r\n"
      "*1\r\n$0\r\n\r\n"
      "*2\r\n$4\r\nECHO\r\n$4\r\na\r\nb\r\n"
      "*1\r\n$3\r\nG";
  Strings got = parse_all_ways(in);
  CHECK(got == Strings{"ok:22:GET|key", "ok:6:PING:inline", "skip:2", "skip:4", "ok:12:set|k|a b:inline",
                       "skip:5", "skip:5", "ok:10:", "ok:24:ECHO|a\r\nb", "incomplete:9"});
}

TEST_CASE("multibulk counts zero or negative are skipped without a reply") {
  CHECK(parse_all_ways("*0\r\n*-1\r\n*-7\r\n") == Strings{"skip:4", "skip:5", "skip:5"});
}

TEST_CASE("invalid multibulk lengths give Valkey's error") {
  const std::string text = "ERR Protocol error: invalid multibulk length";
  for (const char* in : {"*abc\r\n", "*\r\n", "*-0\r\n", "*01\r\n", "*+1\r\n", "* 1\r\n", "*1 \r\n",
                         "*1048577\r\n", "*99999999999999999999\r\n"}) {
    CAPTURE(in);
    CHECK(one_error(in) == text);
  }
  CHECK(one_error("*1048576\r\n") == "status 1");  // at the limit: waits for elements
  RequestLimits small;
  small.max_multibulk_len = 2;
  CHECK(one_error("*3\r\n", small) == text);
}

TEST_CASE("an element that is not a bulk gives expected '$' with the byte") {
  CHECK(one_error("*1\r\nx3\r\n") == "ERR Protocol error: expected '$', got 'x'");
  CHECK(one_error("*2\r\n$1\r\na\r\n:1\r\n") == "ERR Protocol error: expected '$', got ':'");
  // CR and LF in an error text become spaces, as in Valkey's replies.
  CHECK(one_error("*1\r\n\r\n") == "ERR Protocol error: expected '$', got ' '");
}

TEST_CASE("invalid bulk lengths give Valkey's error") {
  const std::string text = "ERR Protocol error: invalid bulk length";
  for (const char* in : {"*1\r\n$-1\r\n", "*1\r\n$abc\r\n", "*1\r\n$\r\n", "*1\r\n$01\r\n",
                         "*1\r\n$536870913\r\n"}) {
    CAPTURE(in);
    CHECK(one_error(in) == text);
  }
  CHECK(one_error("*1\r\n$536870912\r\n") == "status 1");
  RequestLimits small;
  small.max_bulk_len = 10;
  CHECK(one_error("*1\r\n$11\r\n", small) == text);
  CHECK(one_error("*1\r\n$10\r\n", small) == "status 1");
}

TEST_CASE("a header line without CR is refused once it passes the inline limit") {
  const std::string count(65535, '1');
  CHECK(one_error("*" + count) == "status 1");  // 64 KiB exactly: still waiting
  CHECK(one_error("*" + count + "1") == "ERR Protocol error: too big mbulk count string");
  CHECK(one_error("*1\r\n$" + count) == "status 1");
  CHECK(one_error("*1\r\n$" + count + "1") == "ERR Protocol error: too big bulk count string");
  // The size check comes before the '$' check, as in Valkey.
  CHECK(one_error("*1\r\nX" + std::string(70000, 'y')) ==
        "ERR Protocol error: too big bulk count string");
  RequestLimits small;
  small.max_inline_len = 8;
  CHECK(parse_all_ways("*1\r\n$123456789", small) ==
        Strings{"error:ERR Protocol error: too big bulk count string"});
  CHECK(parse_all_ways("*123456789\r\n", small) ==
        Strings{"error:ERR Protocol error: too big mbulk count string"});
}

TEST_CASE("inline requests over the limit without LF are refused") {
  CHECK(one_error(std::string(65536, 'a')) == "status 1");
  CHECK(one_error(std::string(65537, 'a')) == "ERR Protocol error: too big inline request");
  RequestParser p;
  Request r;
  const std::string at_limit = std::string(65536, 'a') + "\n";
  REQUIRE(p.parse(at_limit, &r) == ParseStatus::ok);
  CHECK(r.args[0].size() == 65536);
  RequestLimits small;
  small.max_inline_len = 8;
  CHECK(parse_all_ways("GET abcdefgh\r\n", small) ==
        Strings{"error:ERR Protocol error: too big inline request"});
  CHECK(parse_all_ways("GET abc\r\n", small) == Strings{"ok:9:GET|abc:inline"});
}

TEST_CASE("a NUL byte hides the line end, as strchr does in Valkey") {
  RequestLimits small;
  small.max_inline_len = 8;
  CHECK(parse_all_ways(std::string("GET\0a\n", 6), small) == Strings{"incomplete:6"});
  CHECK(parse_all_ways(std::string("GET\0a\nPING\n", 11), small) ==
        Strings{"error:ERR Protocol error: too big inline request"});
  CHECK(parse_all_ways(std::string("*1\0\r\n$1\r\n", 9), small) ==
        Strings{"error:ERR Protocol error: too big mbulk count string"});
  // Inside a bulk payload NUL is just data.
  CHECK(parse_all_ways(std::string("*1\r\n$3\r\na\0b\r\n", 13)) ==
        Strings{std::string("ok:13:a\0b", 9)});
}

TEST_CASE("bytes Valkey skips unchecked are skipped the same way") {
  // The byte after a header CR and the two after a payload are not checked.
  CHECK(parse_all_ways("*1\rX$3\rYfooAB") == Strings{"ok:13:foo"});
}

TEST_CASE("unbalanced or misplaced quotes in an inline request are refused") {
  const std::string text = "error:ERR Protocol error: unbalanced quotes in request";
  for (const char* in : {"SET k \"abc\r\n", "SET k 'abc\r\n", "SET k \"a\"b\r\n", "SET k 'a'b\r\n",
                         "ECHO \"a\\\"\r\n", "ECHO \"abc\\\r\n"}) {
    CAPTURE(in);
    CHECK(parse_all_ways(in) == Strings{text});
  }
}

TEST_CASE("inline quoting follows sdssplitargs") {
  auto args = [](std::string line) {
    std::string scratch;
    std::vector<std::pair<size_t, size_t>> spans;
    Strings out;
    if (!split_inline_args(line, &scratch, &spans)) return Strings{"<unbalanced>"};
    for (auto [off, len] : spans) out.push_back(scratch.substr(off, len));
    return out;
  };
  CHECK(args("SET k \"hello world\"") == Strings{"SET", "k", "hello world"});
  CHECK(args("  a\t b  ") == Strings{"a", "b"});
  CHECK(args("\"\\x41\\x4a\\x4b\"") == Strings{"AJK"});
  CHECK(args("\"\\x4g\"") == Strings{"x4g"});  // not hex: a plain escape of 'x'
  CHECK(args("\"\\x00\"") == Strings{std::string(1, '\0')});
  CHECK(args("\"a\\nb\\tc\\r\\b\\a\\\\\\\"d\\q\"") == Strings{"a\nb\tc\r\b\a\\\"dq"});
  CHECK(args("'it\\'s' 'a\\nb'") == Strings{"it's", "a\\nb"});
  CHECK(args("a\"b c\"") == Strings{"ab c"});  // a quote inside a word opens quoting
  CHECK(args("SET k \"\"") == Strings{"SET", "k", ""});
  CHECK(args("a\vb c") == Strings{"a\vb", "c"});  // \v ends no word but is skipped between
  CHECK(args("\v\f a") == Strings{"a"});
  CHECK(args("\"a\"\tb") == Strings{"a", "b"});
  CHECK(args("") == Strings{});
  CHECK(args("a\"b\"c") == Strings{"<unbalanced>"});
  CHECK(parse_all_ways("GET a\rb\n") == Strings{"ok:8:GET|a|b:inline"});
  CHECK(parse_all_ways("PING\nPING\r\n") == Strings{"ok:5:PING:inline", "ok:6:PING:inline"});
}

TEST_CASE("an error is sticky until reset") {
  RequestParser p;
  Request r;
  CHECK(p.parse("*x\r\n", &r) == ParseStatus::error);
  CHECK(p.parse("*1\r\n$1\r\na\r\n", &r) == ParseStatus::error);
  p.reset();
  CHECK(p.error().empty());
  CHECK(p.parse("*1\r\n$1\r\na\r\n", &r) == ParseStatus::ok);
}

TEST_CASE("argument storage is reused across requests") {
  RequestParser p;
  Request r;
  const std::string in = "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n";
  REQUIRE(p.parse(in, &r) == ParseStatus::ok);
  const auto* storage = r.args.data();
  REQUIRE(p.parse(in, &r) == ParseStatus::ok);
  CHECK(r.args.data() == storage);
}

TEST_CASE("a 1M-argument request fed in 16 KiB pieces parses in linear time") {
  const size_t n = 1024 * 1024;
  std::string in = "*" + std::to_string(n) + "\r\n";
  for (size_t i = 0; i < n; ++i) in += "$1\r\nx\r\n";
  RequestParser p;
  Request r;
  std::string buf;
  ParseStatus st = ParseStatus::incomplete;
  size_t calls = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t off = 0; off < in.size(); off += 16384) {
    buf.append(in, off, 16384);  // the buffer moves as it grows
    st = p.parse(buf, &r);
    ++calls;
    if (off + 16384 < in.size()) REQUIRE(st == ParseStatus::incomplete);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  REQUIRE(st == ParseStatus::ok);
  CHECK(r.args.size() == n);
  CHECK(r.consumed == in.size());
  MESSAGE("1M args, " << in.size() << " bytes, " << calls << " calls: " << secs << " s");
  CHECK(secs < 3.0);  // quadratic rescanning would take minutes
}

TEST_CASE("a 64 MiB bulk fed in 16 KiB pieces costs constant work per piece") {
  const size_t len = 64u << 20;
  std::string head = "*2\r\n$3\r\nSET\r\n$" + std::to_string(len) + "\r\n";
  std::string buf = head;
  buf.reserve(head.size() + len + 2);
  RequestParser p;
  Request r;
  REQUIRE(p.parse(buf, &r) == ParseStatus::incomplete);
  const auto t0 = std::chrono::steady_clock::now();
  std::string chunk(16384, 'v');
  size_t left = len;
  while (left > 0) {
    const size_t take = left < chunk.size() ? left : chunk.size();
    buf.append(chunk, 0, take);
    left -= take;
    REQUIRE(p.parse(buf, &r) == ParseStatus::incomplete);
  }
  buf += "\r\n";
  REQUIRE(p.parse(buf, &r) == ParseStatus::ok);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(r.args[1].size() == len);
  CHECK(r.consumed == buf.size());
  MESSAGE("64 MiB bulk in 16 KiB pieces: " << secs << " s");
  CHECK(secs < 3.0);
}

TEST_CASE("strict integers follow Valkey's string2ll") {
  int64_t v = 0;
  CHECK((parse_strict_int64("0", &v) && v == 0));
  CHECK((parse_strict_int64("-42", &v) && v == -42));
  CHECK((parse_strict_int64("9223372036854775807", &v) && v == INT64_MAX));
  CHECK((parse_strict_int64("-9223372036854775808", &v) && v == INT64_MIN));
  for (const char* bad : {"", "-", "-0", "00", "01", "+1", " 1", "1 ", "1a", "9223372036854775808",
                          "-9223372036854775809", "18446744073709551616"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_strict_int64(bad, &v));
  }
}
