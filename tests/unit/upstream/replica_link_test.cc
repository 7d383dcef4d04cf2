// ReplicaLink against a real redis-server: never a mocked upstream.
#include "proxy/upstream/replica_link.h"

#include <doctest/doctest.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "unit/redis_server_fixture.h"

using dp::test::Client;
using dp::test::Loop;
using dp::test::RedisServer;
using dp::upstream::LinkState;
using dp::upstream::ReplicaLink;
using dp::upstream::ReplicaLinkOptions;

namespace {

// Records everything the link reports and checks the stream is contiguous.
struct Recorder : ReplicaLink::Listener {
  ReplicaLink* link = nullptr;
  int full_resyncs = 0, continues = 0, rdb_dones = 0;
  std::string replid, new_replid;
  uint64_t resync_offset = 0;
  std::string rdb, stream;
  uint64_t first_stream_offset = 0, stream_end = 0;
  bool gap = false;
  std::vector<LinkState> states;
  std::string reason;
  std::function<void()> after_rdb;
  bool durable_follows = false;  // report every received byte durable at once

  void on_full_resync(const std::string& id, uint64_t off) override {
    full_resyncs++;
    replid = id;
    resync_offset = off;
    stream_end = off;
    rdb.clear();
  }
  void on_rdb_data(std::string_view b) override { rdb.append(b); }
  void on_rdb_done() override {
    rdb_dones++;
    if (after_rdb) after_rdb();
  }
  void on_continue(const std::string& id) override {
    continues++;
    new_replid = id;
  }
  void on_stream(std::string_view b, uint64_t first) override {
    if (first != stream_end + 1) gap = true;
    if (first_stream_offset == 0) first_stream_offset = first;
    stream_end = first + b.size() - 1;
    stream.append(b);
    if (durable_follows) link->durable(stream_end);
    // What the lead's stream parser does on REPLCONF GETACK.
    if (stream.find("GETACK") != std::string::npos) link->ack_now();
  }
  void on_state(LinkState s, const std::string& why) override {
    states.push_back(s);
    if (s == LinkState::disconnected) reason = why;
  }
};

ReplicaLinkOptions options_for(const RedisServer& srv) {
  ReplicaLinkOptions o;
  o.host = "127.0.0.1";
  o.port = srv.port();
  o.listening_port = 7777;
  return o;
}

// Loop + recorder + link; the link is closed even when a REQUIRE fails.
struct LinkUnderTest {
  Loop loop;
  Recorder rec;
  ReplicaLink link;
  explicit LinkUnderTest(ReplicaLinkOptions o) : link(loop.get(), std::move(o), &rec) {
    rec.link = &link;
  }
  ~LinkUnderTest() { close(); }
  void close() {
    bool closed = false;
    link.close([&] { closed = true; });
    loop.run_until([&] { return closed; }, "the link's close callback");
  }
  bool finish() {  // true when no handle leaked
    close();
    return loop.close_ok();
  }
  // What the link and the recorder saw, for a deadline's report.
  std::string describe() const {
    std::string s = std::string("state=") + dp::upstream::to_string(link.state()) +
                    " received=" + std::to_string(link.received_offset()) +
                    " acked=" + std::to_string(link.acked_offset()) +
                    " full_resyncs=" + std::to_string(rec.full_resyncs) + " states=[";
    for (size_t i = 0; i < rec.states.size(); i++)
      s += (i ? "," : "") + std::string(dp::upstream::to_string(rec.states[i]));
    return s + "] reason=\"" + rec.reason + "\"";
  }
  // Runs the loop until done() holds; on giving up prints `what` and describe().
  bool until(const std::function<bool()>& done, std::string_view what,
             std::chrono::milliseconds timeout = dp::test::kDefaultWait) {
    return loop.run_until(done, what, timeout, [this] { return describe(); });
  }
};

// An RDB file ends with the EOF opcode 0xFF and an 8-byte checksum.
bool looks_like_whole_rdb(const std::string& rdb) {
  return rdb.size() > 18 && rdb.compare(0, 5, "REDIS") == 0 &&
         static_cast<unsigned char>(rdb[rdb.size() - 9]) == 0xFF;
}

// No PINGs in the stream during a test; diskless (7.0's default) without the 5 s wait.
const std::vector<std::string> kQuiet = {"--repl-ping-replica-period", "3600",
                                         "--repl-diskless-sync-delay", "0"};

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

TEST_CASE("full sync with a disk RDB delivers the snapshot at the server's offset") {
  RedisServer srv(with(kQuiet, {"--repl-diskless-sync", "no"}));
  Client cli(srv.port());
  cli.cmd({"SET", "before", "sync"});
  LinkUnderTest t(options_for(srv));
  auto& rec = t.rec;
  auto& link = t.link;
  link.start("", 0);
  REQUIRE(t.until([&] { return link.state() == LinkState::streaming; }, "the link to reach streaming"));
  CHECK(rec.full_resyncs == 1);
  CHECK(rec.rdb_dones == 1);
  CHECK(rec.replid.size() == 40);
  CHECK(rec.replid == cli.info("replication", "master_replid"));
  CHECK(rec.resync_offset == cli.offset());
  CHECK(looks_like_whole_rdb(rec.rdb));
  CHECK(rec.rdb.find("before") != std::string::npos);
  CHECK(link.received_offset() == rec.resync_offset);
  CHECK(rec.states == std::vector<LinkState>{LinkState::connecting, LinkState::handshake,
                                             LinkState::receiving_rdb, LinkState::streaming});
  CHECK(t.finish());
}

TEST_CASE("full sync from a diskless primary strips the EOF mark and passes a big RDB through") {
  RedisServer srv(with(kQuiet, {"--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0",
                                "--enable-debug-command", "yes"}));
  Client cli(srv.port());
  cli.cmd({"DEBUG", "POPULATE", "20000", "key", "100"});  // ~2.5 MB: many reads, split marks
  LinkUnderTest t(options_for(srv));
  auto& rec = t.rec;
  auto& link = t.link;
  link.start("?", 0);
  REQUIRE(t.until([&] { return link.state() == LinkState::streaming; }, "the link to reach streaming", std::chrono::milliseconds(20000)));
  CHECK(looks_like_whole_rdb(rec.rdb));
  CHECK(rec.rdb.size() > 500000);
  CHECK(rec.resync_offset == cli.offset());

  // The bytes are a loadable RDB: a fresh server started on them has every key.
  std::string path = srv.dir() + "/captured.rdb";
  std::ofstream(path, std::ios::binary) << rec.rdb;
  RedisServer loaded({"--dbfilename", "captured.rdb", "--dir", srv.dir()});
  Client lc(loaded.port());
  CHECK(lc.cmd({"DBSIZE"}) == "20000");

  // The diskless primary starts the stream only after an ACK that follows the RDB.
  cli.cmd({"SET", "after", "sync"});
  REQUIRE(t.until([&] { return link.received_offset() == cli.offset(); }, "the link to receive up to the server's offset"));
  CHECK(rec.stream.find("after") != std::string::npos);
  CHECK(t.finish());
}

TEST_CASE("stream bytes carry exactly the server's replication offsets") {
  RedisServer srv(with(kQuiet, {"--repl-diskless-sync", "no"}));
  Client cli(srv.port());
  LinkUnderTest t(options_for(srv));
  auto& rec = t.rec;
  auto& link = t.link;
  link.start("", 0);
  REQUIRE(t.until([&] { return link.state() == LinkState::streaming; }, "the link to reach streaming"));
  cli.cmd({"SET", "a", "1"});
  std::string role = cli.cmd({"ROLE"});  // master \n <offset> \n replicas...
  uint64_t role_offset = std::stoull(role.substr(role.find('\n') + 1));
  REQUIRE(t.until([&] { return link.received_offset() >= role_offset; }, "the link to receive up to ROLE's offset"));
  CHECK(link.received_offset() == role_offset);
  CHECK(rec.first_stream_offset == rec.resync_offset + 1);
  CHECK(rec.stream_end == role_offset);
  CHECK_FALSE(rec.gap);
  CHECK(rec.stream.find("*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n") != std::string::npos);
  for (int i = 0; i < 200; i++) cli.cmd({"RPUSH", "list", std::to_string(i)});
  REQUIRE(t.until([&] { return link.received_offset() == cli.offset(); }, "the link to receive up to the server's offset"));
  CHECK_FALSE(rec.gap);
  CHECK(rec.stream.size() == link.received_offset() - rec.resync_offset);
  CHECK(t.finish());
}

TEST_CASE("the server lists the link as an online replica with its listening port") {
  RedisServer srv(kQuiet);
  Client cli(srv.port());
  LinkUnderTest t(options_for(srv));
  auto& loop = t.loop;
  auto& link = t.link;
  link.start("", 0);
  REQUIRE(t.until([&] { return link.state() == LinkState::streaming; }, "the link to reach streaming"));
  REQUIRE(loop.run_until(
      [&] { return cli.info("replication", "slave0").find("state=online") != std::string::npos; },
      "INFO replication to list the link as an online replica",
      dp::test::kDefaultWait, [&] { return cli.info("replication", "slave0"); }));
  CHECK(cli.info("replication", "connected_slaves") == "1");
  CHECK(cli.info("replication", "slave0").find("port=7777") != std::string::npos);
  CHECK(t.finish());
}

// Runs a blocking WAIT on its own connection while the loop keeps running.
std::string wait_on_server(Loop& loop, uint16_t port, const std::string& timeout_ms) {
  std::atomic<bool> done{false};
  std::string answer;
  std::thread t([&] {
    Client c(port);
    c.cmd({"SET", "w", "1"});
    answer = c.cmd({"WAIT", "1", timeout_ms});
    done = true;
  });
  loop.run_until([&] { return done.load(); }, "the WAIT on its own thread to answer",
                 std::chrono::milliseconds(std::stoll(timeout_ms)) + dp::test::kDefaultWait);
  t.join();
  return answer;
}

TEST_CASE("WAIT counts the link only for offsets reported durable") {
  RedisServer srv(with(kQuiet, {"--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"}));
  Client cli(srv.port());
  ReplicaLinkOptions o = options_for(srv);
  o.ack_interval_ms = 50;  // frequent periodic ACKs: they must still not claim undurable bytes
  LinkUnderTest t(o);
  auto& loop = t.loop;
  auto& rec = t.rec;
  auto& link = t.link;
  link.start("", 0);
  REQUIRE(t.until([&] { return link.state() == LinkState::streaming; }, "the link to reach streaming"));

  // Nothing reported durable: received bytes (and GETACK, answered by
  // ack_now()) must not make WAIT count us.
  CHECK(wait_on_server(loop, srv.port(), "300") == "0");
  CHECK(link.received_offset() == cli.offset());
  CHECK(link.acked_offset() == 0);

  rec.durable_follows = true;
  link.durable(link.received_offset());
  CHECK(wait_on_server(loop, srv.port(), "2000") == "1");
  CHECK(link.acked_offset() <= link.received_offset());
  CHECK(t.finish());
}

TEST_CASE("acknowledgement never exceeds what was received") {
  RedisServer srv(kQuiet);
  LinkUnderTest t(options_for(srv));
  auto& rec = t.rec;
  auto& link = t.link;
  rec.after_rdb = [&] { link.durable(1ull << 40); };  // a stale offset from an older history
  link.start("", 0);
  REQUIRE(t.until([&] { return link.state() == LinkState::streaming; }, "the link to reach streaming"));
  // The ACK the stale offset triggers is clamped to what was received.
  bool exceeded = false;
  REQUIRE(t.until(
      [&] {
        exceeded = exceeded || link.acked_offset() > link.received_offset();
        return link.acked_offset() == link.received_offset();
      },
      "the link to acknowledge what it received"));
  CHECK_FALSE(exceeded);
  CHECK(link.acked_offset() == link.received_offset());
  CHECK(t.finish());
}

TEST_CASE("PSYNC after a reconnect continues from the backlog without an RDB") {
  RedisServer srv(with(kQuiet, {"--repl-diskless-sync", "no"}));
  Client cli(srv.port());
  LinkUnderTest t(options_for(srv));
  auto& loop = t.loop;
  auto& rec = t.rec;
  auto& link = t.link;
  link.start("", 0);
  REQUIRE(t.until([&] { return link.state() == LinkState::streaming; }, "the link to reach streaming"));
  cli.cmd({"SET", "a", "1"});
  REQUIRE(t.until([&] { return link.received_offset() == cli.offset(); }, "the link to receive up to the server's offset"));

  link.pause();  // bytes written now stay unread on the old socket
  cli.cmd({"SET", "b", "2"});
  loop.run_for(100);
  const uint64_t held = link.received_offset();
  CHECK(held < cli.offset());
  link.start(rec.replid, held);  // reconnect from the last byte we hold
  link.resume();
  REQUIRE(t.until([&] { return link.received_offset() == cli.offset(); }, "the link to receive up to the server's offset"));
  CHECK(rec.continues == 1);
  CHECK(rec.full_resyncs == 1);
  CHECK(rec.new_replid.empty());
  CHECK_FALSE(rec.gap);
  CHECK(rec.stream.find("$1\r\nb\r\n$1\r\n2") != std::string::npos);
  CHECK(link.reconnects() == 1);
  CHECK(t.finish());
}

TEST_CASE("a wrong password ends in disconnected with the server's error") {
  RedisServer srv({"--requirepass", "secret"});
  ReplicaLinkOptions o;
  o.host = "127.0.0.1";
  o.port = srv.port();
  o.password = "wrong";
  LinkUnderTest t(o);
  auto& rec = t.rec;
  auto& link = t.link;
  link.start("", 0);
  REQUIRE(t.until([&] { return !rec.reason.empty(); }, "the link to report a disconnect reason"));
  CHECK(link.state() == LinkState::disconnected);
  INFO(rec.reason);
  CHECK(rec.reason.find("127.0.0.1:" + std::to_string(srv.port())) != std::string::npos);
  CHECK(rec.reason.find("AUTH") != std::string::npos);
  CHECK(rec.reason.find("-WRONGPASS") != std::string::npos);

  SUBCASE("and no password names NOAUTH") {
    ReplicaLinkOptions o2 = o;
    o2.password.clear();
    LinkUnderTest t2(o2);
    t2.link.start("", 0);
    REQUIRE(t2.until([&] { return !t2.rec.reason.empty(); }, "the link to report a disconnect reason"));
    CHECK(t2.rec.reason.find("-NOAUTH") != std::string::npos);
    CHECK(t2.finish());
  }
  CHECK(t.finish());
}

TEST_CASE("a named link sends CLIENT SETNAME before PSYNC: CLIENT LIST shows it as a named replica") {
  RedisServer srv(kQuiet);
  Client cli(srv.port());
  ReplicaLinkOptions o = options_for(srv);
  o.client_name = "durable-proxy-replica";
  LinkUnderTest t(o);
  t.link.start("", 0);
  REQUIRE(t.until([&] { return t.link.state() == LinkState::streaming; }, "the link to reach streaming"));
  std::string line;
  for (const std::string& l : [&] {
         std::vector<std::string> v;
         std::string all = cli.cmd({"CLIENT", "LIST"});
         for (size_t p = 0, e; p < all.size(); p = e + 1) {
           e = all.find('\n', p);
           if (e == std::string::npos) e = all.size();
           v.push_back(all.substr(p, e - p));
         }
         return v;
       }())
    if (l.find("name=durable-proxy-replica") != std::string::npos) line = l;
  INFO(cli.cmd({"CLIENT", "LIST"}));
  REQUIRE(!line.empty());
  CHECK(line.find(" flags=S ") != std::string::npos);  // the named connection is the replica
  CHECK(t.finish());
}

TEST_CASE("the right password gets a full sync") {
  RedisServer srv(with(kQuiet, {"--requirepass", "secret"}));
  ReplicaLinkOptions o;
  o.host = "localhost";  // resolved by name
  o.port = srv.port();
  o.password = "secret";
  LinkUnderTest t(o);
  auto& rec = t.rec;
  auto& link = t.link;
  link.start("", 0);
  REQUIRE(t.until([&] { return link.state() == LinkState::streaming; }, "the link to reach streaming"));
  CHECK(rec.full_resyncs == 1);
  CHECK(t.finish());
}

TEST_CASE("a server that goes away ends in disconnected with a reason") {
  RedisServer srv(kQuiet);
  LinkUnderTest t(options_for(srv));
  auto& rec = t.rec;
  auto& link = t.link;
  link.start("", 0);
  REQUIRE(t.until([&] { return link.state() == LinkState::streaming; }, "the link to reach streaming"));
  srv.stop();
  REQUIRE(t.until([&] { return link.state() == LinkState::disconnected; }, "the link to report disconnected"));
  INFO(rec.reason);
  CHECK(rec.reason.find("127.0.0.1:" + std::to_string(srv.port())) != std::string::npos);
  CHECK((rec.reason.find("closed") != std::string::npos ||
         rec.reason.find("reset") != std::string::npos));

  // Restarting against nothing: the connect error is the reason.
  rec.reason.clear();
  link.start(rec.replid, link.received_offset());
  REQUIRE(t.until([&] { return !rec.reason.empty(); }, "the link to report a disconnect reason"));
  INFO(rec.reason);
  CHECK(rec.reason.find("connection refused") != std::string::npos);
  CHECK(t.finish());
}

TEST_CASE("a replica without its primary refuses PSYNC and the reason quotes it") {
  RedisServer srv({"--replicaof", "127.0.0.1", std::to_string(dp::test::free_port())});
  LinkUnderTest t(options_for(srv));
  auto& rec = t.rec;
  auto& link = t.link;
  link.start("", 0);
  REQUIRE(t.until([&] { return !rec.reason.empty(); }, "the link to report a disconnect reason"));
  INFO(rec.reason);
  CHECK(rec.reason.find("PSYNC ? -1 refused") != std::string::npos);
  CHECK(rec.reason.find("while not connected with my master") != std::string::npos);
  CHECK(t.finish());
}

TEST_CASE("close during the handshake leaves no handle behind") {
  RedisServer srv(kQuiet);
  LinkUnderTest t(options_for(srv));
  auto& loop = t.loop;
  auto& rec = t.rec;
  auto& link = t.link;
  link.start("", 0);
  REQUIRE(t.until([&] { return link.state() == LinkState::handshake; }, "the link to reach the handshake"));
  size_t states_before = rec.states.size();
  t.close();
  CHECK(rec.states.size() == states_before);  // no listener call after close()
  CHECK(loop.close_ok());
}
