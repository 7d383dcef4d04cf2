#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "proxy/resp/reply_framer.h"

using namespace dp::resp;
using Strings = std::vector<std::string>;

namespace {

Strings items(const FrameElements& e) {
  Strings out;
  for (size_t i = 0; i < e.items.size(); ++i) {
    out.push_back(e.nested(i) ? "<nested>" : e.is_null(i) ? "<null>" : std::string(e.items[i]));
  }
  return out;
}

}  // namespace

TEST_CASE("RESP2 pub/sub messages are recognised by their elements") {
  FrameElements e;
  REQUIRE(frame_elements("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n", 8, &e));
  CHECK(e.count == 3);
  CHECK(items(e) == Strings{"message", "ch", "hello"});
  REQUIRE(frame_elements("*4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$1\r\nx\r\n", 8, &e));
  CHECK(items(e) == Strings{"pmessage", "c*", "ch", "x"});
  REQUIRE(frame_elements("*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n", 8, &e));
  CHECK(items(e) == Strings{"subscribe", "ch", "1"});
  CHECK(e.types == std::vector<char>{'$', '$', ':'});
  // UNSUBSCRIBE with no subscription: a null channel.
  REQUIRE(frame_elements("*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n", 8, &e));
  CHECK(items(e) == Strings{"unsubscribe", "<null>", "0"});
  // PING in subscribed mode.
  REQUIRE(frame_elements("*2\r\n$4\r\npong\r\n$0\r\n\r\n", 8, &e));
  CHECK(items(e) == Strings{"pong", ""});
  CHECK_FALSE(e.is_null(1));
}

TEST_CASE("RESP3 push frames, nested elements and attributes") {
  FrameElements e;
  REQUIRE(frame_elements(">2\r\n$10\r\ninvalidate\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n", 8, &e));
  CHECK(items(e) == Strings{"invalidate", "<nested>"});
  REQUIRE(frame_elements(">2\r\n$10\r\ninvalidate\r\n_\r\n", 8, &e));
  CHECK(items(e) == Strings{"invalidate", "<null>"});
  REQUIRE(frame_elements("|1\r\n+a\r\n+b\r\n>3\r\n+message\r\n+ch\r\n=8\r\ntxt:data\r\n", 8, &e));
  CHECK(items(e) == Strings{"message", "ch", "data"});
  REQUIRE(frame_elements("*2\r\n|1\r\n+a\r\n+b\r\n:5\r\n*-1\r\n", 8, &e));
  CHECK(items(e) == Strings{"5", "<null>"});
  REQUIRE(frame_elements("%1\r\n+key\r\n,1.5\r\n", 8, &e));
  CHECK(e.count == 1);
  CHECK(items(e) == Strings{"key", "1.5"});
}

TEST_CASE("frame_elements stops at max and refuses non-aggregates") {
  FrameElements e;
  REQUIRE(frame_elements("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n", 1, &e));
  CHECK(e.count == 3);
  CHECK(items(e) == Strings{"message"});
  CHECK_FALSE(frame_elements("+OK\r\n", 8, &e));
  CHECK_FALSE(frame_elements("*-1\r\n", 8, &e));
  CHECK_FALSE(frame_elements("$3\r\nfoo\r\n", 8, &e));
  CHECK_FALSE(frame_elements("*2\r\n:1\r\n", 8, &e));  // truncated
  REQUIRE(frame_elements("*0\r\n", 8, &e));
  CHECK(e.count == 0);
  CHECK(e.items.empty());
}

TEST_CASE("frame_scalar returns the payload of scalar frames only") {
  std::string_view v;
  REQUIRE(frame_scalar("+OK\r\n", &v));
  CHECK(v == "OK");
  REQUIRE(frame_scalar("-ERR bad\r\n", &v));
  CHECK(v == "ERR bad");
  REQUIRE(frame_scalar(":42\r\n", &v));
  CHECK(v == "42");
  REQUIRE(frame_scalar("$5\r\na\r\nbc\r\n", &v));
  CHECK(v == "a\r\nbc");
  REQUIRE(frame_scalar("=15\r\ntxt:Some string\r\n", &v));
  CHECK(v == "Some string");
  REQUIRE(frame_scalar("!3\r\nERR\r\n", &v));
  CHECK(v == "ERR");
  REQUIRE(frame_scalar("|1\r\n+a\r\n+b\r\n#t\r\n", &v));
  CHECK(v == "t");
  CHECK_FALSE(frame_scalar("$-1\r\n", &v));
  CHECK_FALSE(frame_scalar("_\r\n", &v));
  CHECK_FALSE(frame_scalar("*1\r\n+a\r\n", &v));
  CHECK_FALSE(frame_scalar("$5\r\nab\r\n", &v));  // truncated
}
