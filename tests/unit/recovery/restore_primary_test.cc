// RestorePrimary against a real redis-server told REPLICAOF it: never a
// mocked replica.
#include "proxy/recovery/restore_primary.h"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "unit/redis_server_fixture.h"

using dp::test::Client;
using dp::test::Loop;
using dp::test::RedisServer;
using dp::upstream::RestorePrimary;
using dp::upstream::RestorePrimaryOptions;

namespace {

const std::string kReplid = "0123456789abcdef0123456789abcdef01234567";

std::string resp(std::initializer_list<std::string> args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return out;
}

// Stream bytes held in memory, numbered from first+1.
struct MemorySource : RestorePrimary::Source {
  std::string bytes;
  uint64_t first = 0;
  uint64_t reads = 0;
  bool read(uint64_t offset, char* buf, size_t max, size_t* n, bool* end, std::string*) override {
    reads++;
    uint64_t pos = offset - first - 1;
    *n = pos >= bytes.size() ? 0 : std::min<size_t>(max, bytes.size() - pos);
    if (*n) std::memcpy(buf, bytes.data() + pos, *n);
    *end = *n == 0;
    return true;
  }
};

struct Recorder : RestorePrimary::Listener {
  bool connected = false, done = false;
  uint64_t done_offset = 0;
  std::string failure;
  void on_replica_connected(const std::string&) override { connected = true; }
  void on_done(uint64_t end) override {
    done = true;
    done_offset = end;
  }
  void on_failed(const std::string& reason) override { failure = reason; }
};

struct Fixture {
  Loop loop;
  MemorySource source;
  Recorder rec;
  std::unique_ptr<RestorePrimary> primary;
  void make(RestorePrimaryOptions o) { primary = std::make_unique<RestorePrimary>(loop.get(), o, &source, &rec); }
  bool finish() {
    bool closed = false;
    primary->close([&] { closed = true; });
    loop.run_until([&] { return closed; }, "the restore primary's close callback");
    return loop.close_ok();
  }
};

}  // namespace

TEST_CASE("an empty server told REPLICAOF replays the checkpoint and the log and ends at the log's offset") {
  RedisServer srv({"--repl-diskless-load", "disabled"});
  Client cli(srv.port());
  Fixture f;
  f.source.first = 5000;
  // ~6 MB of log: many chunks, so the backpressure bound is exercised.
  const std::string big(1000, 'v');
  for (int i = 0; i < 6000; i++) f.source.bytes += resp({"SET", "k" + std::to_string(i), big + std::to_string(i)});
  f.source.bytes += resp({"SELECT", "1"}) + resp({"RPUSH", "list", "a", "b"});
  RestorePrimaryOptions o;
  o.password = "one-time-pw";
  o.replid = kReplid;
  o.checkpoint_offset = 5000;
  o.max_queued_bytes = 256 * 1024;
  f.make(o);
  std::string error;
  REQUIRE(f.primary->listen(&error));
  REQUIRE(f.primary->port() != 0);
  CHECK(cli.cmd({"CONFIG", "SET", "masterauth", "one-time-pw"}) == "OK");
  CHECK(cli.cmd({"REPLICAOF", "127.0.0.1", std::to_string(f.primary->port())}) == "OK");
  const uint64_t end = 5000 + f.source.bytes.size();
  REQUIRE(f.loop.run_until(
      [&] {
        return f.rec.done && cli.info("replication", "master_link_status") == "up" && cli.offset() == end;
      },
      "the replica to load the checkpoint and the log up to their end", std::chrono::milliseconds(30000),
      [&] {
        return "done=" + std::to_string(f.rec.done) + " failure=\"" + f.rec.failure +
               "\" master_link_status=" + cli.info("replication", "master_link_status") +
               " offset=" + std::to_string(cli.offset()) + " of " + std::to_string(end) +
               " sent=" + std::to_string(f.primary->stream_bytes_sent());
      }));
  CHECK(f.rec.failure.empty());
  CHECK(f.rec.done_offset == end);
  CHECK(f.primary->stream_bytes_sent() == f.source.bytes.size());
  CHECK(f.primary->max_queued_seen() <= o.max_queued_bytes + o.chunk_bytes + 1024);
  CHECK(cli.info("replication", "master_replid") == kReplid);
  CHECK(cli.cmd({"GET", "k5999"}) == big + "5999");
  CHECK(cli.cmd({"DBSIZE"}) == "6000");
  CHECK(cli.cmd({"REPLICAOF", "NO", "ONE"}) == "OK");
  // Promoted: our history is its replid2, valid up to the log's end.
  CHECK(cli.info("replication", "master_replid2") == kReplid);
  CHECK(cli.info("replication", "second_repl_offset") == std::to_string(end + 1));
  CHECK(cli.cmd({"SELECT", "1"}) == "OK");
  CHECK(cli.cmd({"LRANGE", "list", "0", "-1"}) == "a\nb");
  CHECK(f.finish());
}

TEST_CASE("a replica with a wrong masterauth is refused and the restore fails naming the cause") {
  RedisServer srv;
  Client cli(srv.port());
  Fixture f;
  f.source.bytes = resp({"SET", "a", "1"});
  RestorePrimaryOptions o;
  o.password = "right";
  o.replid = kReplid;
  f.make(o);
  std::string error;
  REQUIRE(f.primary->listen(&error));
  CHECK(cli.cmd({"CONFIG", "SET", "masterauth", "wrong"}) == "OK");
  CHECK(cli.cmd({"REPLICAOF", "127.0.0.1", std::to_string(f.primary->port())}) == "OK");
  REQUIRE(f.loop.run_until([&] { return !f.rec.failure.empty(); }, "the restore to fail",
                           dp::test::kDefaultWait,
                           [&] { return cli.info("replication", "master_link_status"); }));
  CHECK(f.rec.failure.find("wrong password") != std::string::npos);
  CHECK(f.rec.failure.find("restore primary 127.0.0.1:") != std::string::npos);
  CHECK_FALSE(f.rec.done);
  CHECK(cli.cmd({"REPLICAOF", "NO", "ONE"}) == "OK");
  CHECK(cli.cmd({"DBSIZE"}) == "0");
  CHECK(f.finish());
}

TEST_CASE("a handshake sent one byte at a time is answered, and a protocol error fails naming the parser's text") {
  Fixture f;
  RestorePrimaryOptions o;
  o.replid = kReplid;
  f.make(o);
  std::string error;
  REQUIRE(f.primary->listen(&error));
  const uint16_t port = f.primary->port();
  // A blocking replica on its own thread: the primary runs on this one.
  std::string answers;
  std::thread replica([port, &answers] {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return ::close(fd), void();
    const std::string requests = resp({"PING"}) + "PING\r\n" + resp({"REPLCONF", "capa", "eof"});
    for (char c : requests) ::send(fd, &c, 1, 0);  // one byte per segment (Nagle aside)
    const std::string want = "+PONG\r\n+PONG\r\n+OK\r\n";
    char buf[256];
    while (answers.size() < want.size()) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      answers.append(buf, static_cast<size_t>(n));
    }
    const std::string bad = "*1\r\n$x\r\n";
    ::send(fd, bad.data(), bad.size(), 0);
    while (::recv(fd, buf, sizeof buf, 0) > 0) {}  // until the primary closes
    ::close(fd);
  });
  f.loop.run_until([&] { return !f.rec.failure.empty(); }, "the protocol error to fail the restore");
  const bool closed_ok = f.finish();  // closing the connection ends the replica thread
  replica.join();
  CHECK(answers == "+PONG\r\n+PONG\r\n+OK\r\n");
  CHECK(f.rec.failure.find("Protocol error: invalid bulk length") != std::string::npos);
  CHECK_FALSE(f.rec.done);
  CHECK(closed_ok);
}

TEST_CASE("listening on an address that is not an IP names recovery.restore_listen") {
  Fixture f;
  RestorePrimaryOptions o;
  o.listen_host = "not-an-ip";
  o.replid = kReplid;
  f.make(o);
  std::string error;
  CHECK_FALSE(f.primary->listen(&error));
  CHECK(error.find("recovery.restore_listen") != std::string::npos);
  CHECK(f.finish());
}
