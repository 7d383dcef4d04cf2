#include "proxy/resp/encoder.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "proxy/resp/reply_framer.h"
#include "proxy/resp/request_parser.h"

using namespace dp::resp;

TEST_CASE("encoders write exact RESP bytes") {
  std::string out;
  append_simple(&out, "OK");
  append_error(&out, "ERR bad\r\nthing");
  append_integer(&out, -9223372036854775807 - 1);
  append_bulk(&out, "a\r\nb");
  append_null_bulk(&out, 2);
  append_null_bulk(&out, 3);
  append_null_array(&out, 2);
  append_null_array(&out, 3);
  append_array_header(&out, 2);
  append_map_header(&out, 2, 2);
  append_map_header(&out, 2, 3);
  append_verbatim_or_bulk(&out, "# Server", 2);
  append_verbatim_or_bulk(&out, "# Server", 3);
  CHECK(out ==
        "+OK\r\n"
        "-ERR bad  thing\r\n"
        ":-9223372036854775808\r\n"
        "$4\r\na\r\nb\r\n"
        "$-1\r\n_\r\n*-1\r\n_\r\n"
        "*2\r\n*4\r\n%2\r\n"
        "$8\r\n# Server\r\n"
        "=12\r\ntxt:# Server\r\n");
}

TEST_CASE("every encoded reply is one frame to the reply framer") {
  std::vector<std::string> replies(6);
  append_simple(&replies[0], "PONG");
  append_error(&replies[1], "NOPROTO unsupported protocol version");
  append_integer(&replies[2], 7);
  append_bulk(&replies[3], std::string(100000, 'z'));
  append_verbatim_or_bulk(&replies[4], "line1\r\nline2", 3);
  append_map_header(&replies[5], 1, 3);
  append_bulk(&replies[5], "k");
  append_null_bulk(&replies[5], 3);
  for (const auto& r : replies) {
    CAPTURE(r.substr(0, 20));
    ReplyFramer framer;
    Frame f;
    REQUIRE(framer.next(r, &f) == FrameStatus::ok);
    CHECK(f.length == r.size());
  }
}

TEST_CASE("an encoded command parses back to its arguments") {
  std::string out;
  append_command(&out, {"REPLCONF", "ACK", "", std::string_view("a\0b", 3)});
  CHECK(out.substr(0, 18) == "*4\r\n$8\r\nREPLCONF\r\n");
  RequestParser p;
  Request r;
  REQUIRE(p.parse(out, &r) == ParseStatus::ok);
  CHECK(r.consumed == out.size());
  REQUIRE(r.args.size() == 4);
  CHECK(r.args[0] == "REPLCONF");
  CHECK(r.args[2] == "");
  CHECK(r.args[3] == std::string_view("a\0b", 3));
}
