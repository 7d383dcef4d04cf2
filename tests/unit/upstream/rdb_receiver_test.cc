// RdbReceiver, the pure RDB/EOF-mark reader of a full sync: both framings,
// every split of the input, keep-alives, and the kinds of garbage.
#include "proxy/upstream/rdb_receiver.h"

#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

using dp::upstream::RdbReceiver;
using Status = RdbReceiver::Status;

namespace {

const std::string kMark(40, 'm');

// A payload that is not all one byte, with CR, LF and '$' inside.
std::string payload(size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s.push_back("REDIS0011\r\n$\xff\x00"[i % 14]);
  return s;
}

// What feeding `chunks` in order gives: the payload, the status of the last
// call that did something, and the input bytes left unused (the stream).
struct Outcome {
  std::string payload, rest, error;
  Status status = Status::more;
};
Outcome run(RdbReceiver& rx, const std::vector<std::string>& chunks) {
  Outcome o;
  for (const std::string& c : chunks) {
    if (o.status != Status::more) {
      o.rest += c;
      continue;
    }
    RdbReceiver::Result r = rx.feed(c);
    o.payload.append(r.held);
    o.payload.append(r.data);
    o.status = r.status;
    o.error = r.error;
    o.rest += c.substr(r.consumed);
  }
  return o;
}

// `in` cut at one point, and cut into single bytes.
std::vector<std::string> split_at(const std::string& in, size_t at) { return {in.substr(0, at), in.substr(at)}; }
std::vector<std::string> bytes(const std::string& in) {
  std::vector<std::string> out;
  for (char c : in) out.emplace_back(1, c);
  return out;
}
// Every way a test cuts `in`: in two at each byte boundary, then byte by byte.
std::vector<std::vector<std::string>> every_cut(const std::string& in) {
  std::vector<std::vector<std::string>> out;
  for (size_t at = 0; at <= in.size(); ++at) out.push_back(split_at(in, at));
  out.push_back(bytes(in));
  return out;
}

}  // namespace

TEST_CASE("a sized RDB is passed through whole, at every split, and the stream after it is left unused") {
  const std::string rdb = payload(100);
  const std::string in = "\n\n$100\r\n" + rdb + "*1\r\n$4\r\nPING\r\n";
  for (const auto& chunks : every_cut(in)) {
    RdbReceiver rx;
    Outcome o = run(rx, chunks);
    INFO("first chunk ", chunks[0].size(), " bytes of ", chunks.size(), " chunks");
    REQUIRE(o.status == Status::done);
    CHECK(o.payload == rdb);
    CHECK(o.rest == "*1\r\n$4\r\nPING\r\n");
    CHECK(rx.form() == RdbReceiver::Form::sized);
  }
}

TEST_CASE("a diskless RDB ends at its EOF mark, which is never passed on, at every split") {
  const std::string rdb = payload(150);
  const std::string in = "\n$EOF:" + kMark + "\r\n" + rdb + kMark;
  for (const auto& chunks : every_cut(in)) {
    RdbReceiver rx;
    Outcome o = run(rx, chunks);
    INFO("first chunk ", chunks[0].size(), " bytes of ", chunks.size(), " chunks");
    REQUIRE(o.status == Status::done);
    CHECK(o.payload == rdb);
    CHECK(rx.form() == RdbReceiver::Form::eof_mark);
    CHECK(rx.payload_bytes() == rdb.size());
  }
}

TEST_CASE("random splits of a diskless RDB shorter than its mark, and of a large one") {
  std::mt19937 rng(7);
  for (size_t len : {0, 1, 39, 40, 41, 5000}) {
    const std::string rdb = payload(len);
    const std::string in = "$EOF:" + kMark + "\r\n" + rdb + kMark;
    for (int round = 0; round < 50; ++round) {
      std::vector<std::string> chunks;
      for (size_t i = 0; i < in.size();) {
        size_t n = std::min<size_t>(in.size() - i, 1 + rng() % 60);
        chunks.push_back(in.substr(i, n));
        i += n;
      }
      RdbReceiver rx;
      Outcome o = run(rx, chunks);
      INFO("payload ", len, " round ", round);
      REQUIRE(o.status == Status::done);
      CHECK(o.payload == rdb);
    }
  }
}

TEST_CASE("bytes that only resemble the mark are payload") {
  const std::string near = std::string(39, 'm') + "x";
  const std::string in = "$EOF:" + kMark + "\r\n" + near + "ab" + kMark;
  RdbReceiver rx;
  Outcome o = run(rx, split_at(in, 5 + 40 + 2 + near.size()));
  CHECK(o.status == Status::done);
  CHECK(o.payload == near + "ab");
}

TEST_CASE("an empty sized RDB is done at its preamble") {
  RdbReceiver rx;
  Outcome o = run(rx, {"$0\r\n+stream"});
  CHECK(o.status == Status::done);
  CHECK(o.payload.empty());
  CHECK(o.rest == "+stream");
}

TEST_CASE("keep-alive newlines alone ask for more") {
  RdbReceiver rx;
  Outcome o = run(rx, {"\n", "\n\n", "\r\n"});
  CHECK(o.status == Status::more);
  CHECK(o.payload.empty());
  CHECK(rx.form() == RdbReceiver::Form::unknown);
}

TEST_CASE("garbage is an error that quotes it, and stays one") {
  for (const char* bad : {"+FULLRESYNC again\r\n", "$12x\r\n", "$-1\r\n", "$EOF:short\r\n", "$\r\n"}) {
    RdbReceiver rx;
    Outcome o = run(rx, {bad});
    INFO(bad);
    REQUIRE(o.status == Status::error);
    CHECK(o.error.find("expected the RDB preamble") != std::string::npos);
    RdbReceiver::Result again = rx.feed("$1\r\nx");
    CHECK(again.status == Status::error);
    CHECK(again.consumed == 0);
  }
}

TEST_CASE("the primary's error line ends the transfer with its text") {
  RdbReceiver rx;
  Outcome o = run(rx, bytes("\n-ERR child died\r\n"));
  REQUIRE(o.status == Status::error);
  CHECK(o.error == "the server aborted the full sync: -ERR child died");
}

TEST_CASE("a preamble line longer than the limit is an error") {
  RdbReceiver rx(1024);
  Outcome o = run(rx, {std::string(1025, 'x')});
  REQUIRE(o.status == Status::error);
  CHECK(o.error == "protocol error: reply line longer than 1 KiB");
}

TEST_CASE("reset starts the next full sync from its preamble") {
  RdbReceiver rx;
  CHECK(run(rx, {"$2\r\nab"}).status == Status::done);
  CHECK(rx.feed("more").status == Status::done);
  rx.reset();
  Outcome o = run(rx, {"$EOF:" + kMark + "\r\nxy" + kMark});
  CHECK(o.status == Status::done);
  CHECK(o.payload == "xy");
}
