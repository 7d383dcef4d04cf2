// The one JSON string escaper: what it escapes and what it leaves alone.
#include <doctest/doctest.h>

#include <string>

#include "proxy/base/json.h"

TEST_CASE("quotes and backslashes get a backslash; plain text and UTF-8 pass unchanged") {
  CHECK(dp::json_quoted("plain text") == "\"plain text\"");
  CHECK(dp::json_quoted("say \"hi\" \\ bye") == "\"say \\\"hi\\\" \\\\ bye\"");
  CHECK(dp::json_quoted("caf\xc3\xa9") == "\"caf\xc3\xa9\"");
  CHECK(dp::json_quoted("") == "\"\"");
}

TEST_CASE("every control byte becomes \\u00XX, DEL does not") {
  CHECK(dp::json_quoted("a\nb") == "\"a\\u000ab\"");
  CHECK(dp::json_quoted(std::string("\0\x01\x1f\t\r", 5)) == "\"\\u0000\\u0001\\u001f\\u0009\\u000d\"");
  CHECK(dp::json_quoted("\x7f") == "\"\x7f\"");
}

TEST_CASE("append_json_escaped appends the inside of a string, without quotes") {
  std::string out = "{\"msg\":\"";
  dp::append_json_escaped(&out, "x\"y");
  CHECK(out == "{\"msg\":\"x\\\"y");
}
