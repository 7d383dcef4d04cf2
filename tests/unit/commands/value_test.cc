// proxy/resp/value: the start-up reply decoder.
#include <doctest/doctest.h>

#include <string>

#include "proxy/resp/value.h"

using dp::resp::decode_value;
using dp::resp::Value;

namespace {

Value decode_ok(std::string_view in) {
  Value v;
  size_t used = 0;
  std::string err;
  REQUIRE_MESSAGE(decode_value(in, &used, &v, &err), err);
  CHECK(used == in.size());
  return v;
}

std::string decode_error(std::string_view in) {
  Value v;
  size_t used = 0;
  std::string err;
  CHECK_FALSE(decode_value(in, &used, &v, &err));
  return err;
}

}  // namespace

TEST_CASE("RESP2 scalars decode to their types and values") {
  CHECK(decode_ok("+OK\r\n").str == "OK");
  CHECK(decode_ok("-ERR bad\r\n").type == Value::Type::error);
  CHECK(decode_ok("-ERR bad\r\n").str == "ERR bad");
  CHECK(decode_ok(":-42\r\n").integer == -42);
  CHECK(decode_ok(":9223372036854775807\r\n").integer == INT64_MAX);
  CHECK(decode_ok(":-9223372036854775808\r\n").integer == INT64_MIN);
  Value b = decode_ok("$5\r\na\r\nbc\r\n");
  CHECK(b.type == Value::Type::bulk);
  CHECK(b.str == "a\r\nbc");
  CHECK(decode_ok("$-1\r\n").type == Value::Type::null);
  CHECK(decode_ok("*-1\r\n").type == Value::Type::null);
  CHECK(decode_ok("$0\r\n\r\n").str.empty());
}

TEST_CASE("RESP3 types decode, maps as key/value pairs and attributes dropped") {
  CHECK(decode_ok("_\r\n").type == Value::Type::null);
  CHECK(decode_ok("#t\r\n").integer == 1);
  CHECK(decode_ok("#f\r\n").type == Value::Type::boolean);
  CHECK(decode_ok(",1.5\r\n").str == "1.5");
  CHECK(decode_ok("(123456789012345678901234567890\r\n").type == Value::Type::bignum);
  CHECK(decode_ok("=7\r\ntxt:abc\r\n").str == "txt:abc");
  CHECK(decode_ok("!3\r\nERR\r\n").type == Value::Type::error);
  Value m = decode_ok("%2\r\n+a\r\n:1\r\n+b\r\n*1\r\n:2\r\n");
  REQUIRE(m.type == Value::Type::map);
  REQUIRE(m.elems.size() == 4);
  CHECK(m.elems[2].str == "b");
  CHECK(m.elems[3].elems[0].integer == 2);
  CHECK(decode_ok("~2\r\n+x\r\n+y\r\n").type == Value::Type::set);
  CHECK(decode_ok(">2\r\n+message\r\n+x\r\n").type == Value::Type::push);
  Value a = decode_ok("|1\r\n+key-popularity\r\n%0\r\n:7\r\n");
  CHECK(a.type == Value::Type::integer);
  CHECK(a.integer == 7);
}

TEST_CASE("a reply cut at any byte is incomplete with no error, then decodes whole") {
  const std::string full = "*3\r\n$3\r\nfoo\r\n%1\r\n+k\r\n,2.5\r\n*2\r\n:1\r\n_\r\n";
  for (size_t cut = 0; cut < full.size(); ++cut) {
    Value v;
    size_t used = 99;
    std::string err = "stale";
    CHECK_FALSE(decode_value(std::string_view(full).substr(0, cut), &used, &v, &err));
    CHECK_MESSAGE(err.empty(), "cut at " << cut << ": " << err);
  }
  Value v = decode_ok(full);
  CHECK(v.elems.size() == 3);
  CHECK(v.elems[2].elems[1].type == Value::Type::null);
}

TEST_CASE("only the first reply is consumed when more follow") {
  Value v;
  size_t used = 0;
  std::string err;
  REQUIRE(decode_value("+A\r\n+B\r\n", &used, &v, &err));
  CHECK(used == 4);
  CHECK(v.str == "A");
}

TEST_CASE("malformed input is an error naming the cause and offset") {
  CHECK(decode_error("?x\r\n").find("unknown RESP type byte 0x3f at byte offset 0") != std::string::npos);
  CHECK(decode_error(":12a\r\n").find("bad integer") != std::string::npos);
  CHECK(decode_error(":99999999999999999999\r\n").find("bad integer") != std::string::npos);
  CHECK(decode_error("$3\r\nabcd\r\n").find("not followed by CRLF at byte offset 7") != std::string::npos);
  CHECK(decode_error("$-2\r\n").find("bad length") != std::string::npos);
  CHECK(decode_error("*1\r\n+a\rb\r\n").find("CR not followed by LF") != std::string::npos);
  CHECK(decode_error("#x\r\n").find("boolean") != std::string::npos);
  CHECK(decode_error("$?\r\n").find("streamed") != std::string::npos);
}

TEST_CASE("a huge element count does not allocate before its bytes arrive") {
  Value v;
  size_t used = 0;
  std::string err;
  CHECK_FALSE(decode_value("*4611686018427387903\r\n", &used, &v, &err));
  CHECK(err.empty());
  CHECK(v.elems.capacity() == 0);
}

TEST_CASE("nesting deeper than the limit is an error, not a stack overflow") {
  std::string deep;
  for (int i = 0; i < dp::resp::kMaxDepth + 5; ++i) deep += "*1\r\n";
  deep += ":1\r\n";
  CHECK(decode_error(deep).find("nesting deeper") != std::string::npos);
  std::string ok;
  for (int i = 0; i < 10; ++i) ok += "*1\r\n";
  ok += ":1\r\n";
  CHECK(decode_ok(ok).type == Value::Type::array);
}
