#include <doctest/doctest.h>

#include "config/config.h"
#include "config/value_text.h"

using namespace dp::config;

TEST_CASE("sizes use Valkey's units: kb/mb/gb are 1024-based, k/m/g 1000-based") {
  uint64_t v = 0;
  CHECK(parse_size_text("4096", &v) == "");
  CHECK(v == 4096);
  CHECK(parse_size_text("64kb", &v) == "");
  CHECK(v == 64 * 1024);
  CHECK(parse_size_text("64MB", &v) == "");
  CHECK(v == 64ull << 20);
  CHECK(parse_size_text("1gb", &v) == "");
  CHECK(v == 1ull << 30);
  CHECK(parse_size_text("5k", &v) == "");
  CHECK(v == 5000);
  CHECK(parse_size_text("2m", &v) == "");
  CHECK(v == 2000000);
  CHECK(parse_size_text("3g", &v) == "");
  CHECK(v == 3000000000ull);
  CHECK(parse_size_text("7b", &v) == "");
  CHECK(v == 7);
}

TEST_CASE("malformed or overflowing sizes are rejected with the text quoted") {
  uint64_t v = 0;
  CHECK(parse_size_text("64 mb", &v) == "expected a size such as 65536, 64kb, 64mb or 1gb, got '64 mb'");
  CHECK(parse_size_text("mb", &v) != "");
  CHECK(parse_size_text("-1", &v) != "");
  CHECK(parse_size_text("1.5gb", &v) != "");
  CHECK(parse_size_text("64tb", &v) != "");
  CHECK(parse_size_text("99999999999999999999", &v) != "");
  CHECK(parse_size_text("17179869184gb", &v) == "size '17179869184gb' is too large");
}

TEST_CASE("sizes print in the largest exact binary unit") {
  CHECK(format_size(64ull << 20) == "64mb");
  CHECK(format_size(1ull << 30) == "1gb");
  CHECK(format_size(1536 * 1024) == "1536kb");
  CHECK(format_size(1000) == "1000");
  CHECK(format_size(0) == "0");
}

TEST_CASE("durations convert into the field's unit and need a unit unless zero") {
  uint64_t v = 0;
  CHECK(parse_duration_text("10s", 1000, &v) == "");
  CHECK(v == 10000);
  CHECK(parse_duration_text("500ms", 1000, &v) == "");
  CHECK(v == 500);
  CHECK(parse_duration_text("1h", 1000000, &v) == "");
  CHECK(v == 3600);
  CHECK(parse_duration_text("2m", 1000, &v) == "");
  CHECK(v == 120000);
  CHECK(parse_duration_text("250us", 1, &v) == "");
  CHECK(v == 250);
  CHECK(parse_duration_text("0", 1000, &v) == "");
  CHECK(v == 0);
  CHECK(parse_duration_text("10", 1000, &v) == "duration '10' needs a unit (us, ms, s, m or h)");
  CHECK(parse_duration_text("1500ms", 1000000, &v) == "duration '1500ms' is not a whole number of seconds");
  CHECK(parse_duration_text("10 s", 1000, &v) != "");
  CHECK(parse_duration_text("1d", 1000, &v) != "");
}

TEST_CASE("durations print in the largest exact unit") {
  CHECK(format_duration(10000, 1000) == "10s");
  CHECK(format_duration(3600, 1000000) == "1h");
  CHECK(format_duration(1500, 1000) == "1500ms");
  CHECK(format_duration(90, 1000000) == "90s");
  CHECK(format_duration(0, 1000) == "0ms");
}

TEST_CASE("booleans accept true/false and yes/no only") {
  bool b = false;
  CHECK(parse_bool_text("true", &b) == "");
  CHECK(b);
  CHECK(parse_bool_text("No", &b) == "");
  CHECK(!b);
  CHECK(parse_bool_text("1", &b) == "expected true or false, got '1'");
}

TEST_CASE("whole numbers are plain decimal digits") {
  uint64_t v = 0;
  CHECK(parse_uint_text("10000", &v) == "");
  CHECK(v == 10000);
  CHECK(parse_uint_text("+5", &v) != "");
  CHECK(parse_uint_text("0x10", &v) != "");
  CHECK(parse_uint_text("", &v) != "");
}

TEST_CASE("host:port accepts names, IPv4 and bracketed IPv6") {
  HostPort hp;
  CHECK(parse_host_port("127.0.0.1:6379", &hp) == "");
  CHECK(hp.host == "127.0.0.1");
  CHECK(hp.port == 6379);
  CHECK(parse_host_port("valkey.internal:7000", &hp) == "");
  CHECK(hp.host == "valkey.internal");
  CHECK(parse_host_port("[::1]:7379", &hp) == "");
  CHECK(hp.host == "::1");
  CHECK(hp.port == 7379);
  CHECK(hp.str() == "[::1]:7379");
  CHECK(parse_host_port("0.0.0.0:0", &hp) == "");
  CHECK(hp.port == 0);
}

TEST_CASE("host:port errors say what is wrong") {
  HostPort hp;
  CHECK(parse_host_port("6379", &hp) ==
        "expected HOST:PORT such as 127.0.0.1:6379 or [::1]:6379, got '6379'");
  CHECK(parse_host_port(":6379", &hp) == "missing host in ':6379'");
  CHECK(parse_host_port("::1:6379", &hp) == "IPv6 address needs brackets ([::1]:6379), got '::1:6379'");
  CHECK(parse_host_port("host:65536", &hp) == "port must be a number from 0 to 65535 in 'host:65536'");
  CHECK(parse_host_port("host:", &hp) != "");
  CHECK(parse_host_port("[::1]6379", &hp) != "");
  CHECK(parse_host_port("a b:1", &hp) != "");
}
