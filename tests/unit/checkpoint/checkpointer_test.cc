// Checkpointer against a real redis-server, a real DurableLog and
// CheckpointStore in a temp directory: the cases the integration tests
// cannot steer (another history, a log that lags, abandon, not ready).
#include "proxy/checkpoint/checkpointer.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>

#include "proxy/admin/metrics.h"
#include "unit/redis_server_fixture.h"

using dp::Checkpointer;
using dp::CheckpointerOptions;
using dp::admin::Metric;
using dp::test::Client;
using dp::test::Loop;
using dp::test::RedisServer;
namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kQuiet = {"--repl-ping-replica-period", "3600",
                                         "--repl-diskless-sync-delay", "0"};

struct Fixture {
  RedisServer srv{kQuiet};
  Loop loop;
  std::string dir;
  std::unique_ptr<dp::log::CheckpointStore> store;
  std::unique_ptr<dp::log::DurableLog> log;
  dp::admin::Metrics metrics;
  bool ready = true;
  std::unique_ptr<Checkpointer> ck;

  explicit Fixture(uint64_t log_wait_ms = 60000) {
    char tmpl[] = "/tmp/dp-test-ckpt-XXXXXX";
    dir = ::mkdtemp(tmpl);
    std::string err;
    store = dp::log::CheckpointStore::open(dir, &err);
    REQUIRE_MESSAGE(store, err);
    dp::log::LogOptions lo;
    lo.dir = dir;
    lo.checkpoint_dir = dir;
    lo.segment_bytes = 64 << 10;
    log = dp::log::DurableLog::open(lo, &err);
    REQUIRE_MESSAGE(log, err);
    CheckpointerOptions o;
    o.link.host = "127.0.0.1";
    o.link.port = srv.port();
    o.policy.max_log_bytes = 1ull << 40;  // no automatic trigger
    o.policy.interval_ms = 0;
    o.log_wait_ms = log_wait_ms;
    ck = std::make_unique<Checkpointer>(loop.get(), o, log.get(), store.get(), &metrics,
                                        [this](std::string* why) {
                                          if (!ready) *why = "the test says so";
                                          return ready;
                                        });
  }
  ~Fixture() {
    bool closed = false;
    ck->close([&] { closed = true; });
    loop.run_until([&] { return closed; }, "the checkpointer's close callback");
    ck.reset();
    log.reset();
    CHECK(loop.close_ok());
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  // Runs the loop (with the proxy's 100 ms tick) until no checkpoint runs.
  bool run_to_end() {
    return run_ticking([&] { return !ck->running(); }, "the checkpoint to end");
  }
  // Runs the loop, ticking like the proxy every 100 ms, until done() holds;
  // on giving up prints `what` and the checkpointer's status.
  bool run_ticking(const std::function<bool()>& done, std::string_view what) {
    uint64_t next = 0;
    return loop.run_until(
        [&] {
          if (uv_now(loop.get()) >= next) {
            ck->tick();
            next = uv_now(loop.get()) + 100;
          }
          return done();
        },
        what, dp::test::kDefaultWait, [this] { return status(); });
  }
  // Runs the loop for ms, ticking: only for a negative proof.
  void tick_for(uint64_t ms) {
    uint64_t end = uv_now(loop.get()) + ms, next = 0;
    while (uv_now(loop.get()) < end) {
      if (uv_now(loop.get()) >= next) {
        ck->tick();
        next = uv_now(loop.get()) + 100;
      }
      uv_run(loop.get(), UV_RUN_ONCE);
    }
  }
  bool until(const std::function<bool()>& done, std::string_view what) {
    return loop.run_until(done, what, dp::test::kDefaultWait, [this] { return status(); });
  }
  bool durable_at(uint64_t offset) {
    return loop.run_until([&] { return log->durable_offset() >= offset || log->failed(); },
                          "the log to be durable up to " + std::to_string(offset),
                          dp::test::kDefaultWait,
                          [this] { return "durable_offset=" + std::to_string(log->durable_offset()) +
                                          (log->failed() ? " (failed)" : ""); }) &&
           log->durable_offset() >= offset;
  }
  // The upstream's replid and offset once it has a backlog (it picks a new
  // replid when it creates one, i.e. at the first replica's sync).
  std::pair<std::string, uint64_t> upstream_position() {
    Client c(srv.port());
    return {c.info("replication", "master_replid"), c.offset()};
  }
  std::vector<std::string> checkpoint_files() {
    std::vector<std::string> out;
    for (auto& e : fs::directory_iterator(dir + "/checkpoints")) out.push_back(e.path().filename());
    std::sort(out.begin(), out.end());
    return out;
  }
  std::string status() { return ck->status_json(); }
};

std::string rdb_name(uint64_t offset) {
  char b[40];
  std::snprintf(b, sizeof b, "%020llu.rdb", static_cast<unsigned long long>(offset));
  return b;
}

}  // namespace

TEST_CASE("a snapshot of another history is discarded; one of the log's history is published") {
  Fixture f;
  f.log->reset("another-history", 0);
  REQUIRE(f.durable_at(0));
  {  // a previous checkpoint that must survive the failed attempt
    std::string err;
    auto w = f.store->begin("another-history", 0, &err);
    REQUIRE(w);
    REQUIRE(w->write("old", &err));
    REQUIRE(w->commit(&err));
  }
  std::string msg;
  REQUIRE(f.ck->request("test", &msg) == Checkpointer::Answer::started);
  CHECK(msg.find("checkpoint started") != std::string::npos);
  REQUIRE(f.run_to_end());
  CHECK(f.status().find("\"failed\":1") != std::string::npos);
  CHECK(f.status().find("another history") != std::string::npos);
  CHECK(f.store->latest()->replid == "another-history");
  CHECK(f.checkpoint_files() == std::vector<std::string>{rdb_name(0), "MANIFEST"});
  CHECK(f.metrics.get(Metric::checkpoint_failures_total) == 1);

  // The log now follows the upstream's history: the next one is published.
  Client c(f.srv.port());
  c.cmd({"SET", "k", "v"});
  auto [replid, offset] = f.upstream_position();
  f.log->reset(replid, offset);
  REQUIRE(f.durable_at(offset));
  REQUIRE(f.ck->request("test", &msg) == Checkpointer::Answer::started);
  REQUIRE(f.run_to_end());
  CHECK_MESSAGE(f.status().find("\"completed\":1") != std::string::npos, f.status());
  REQUIRE(f.store->latest());
  CHECK(f.store->latest()->replid == replid);
  CHECK(f.store->latest()->offset == offset);
  CHECK(f.checkpoint_files() == std::vector<std::string>{rdb_name(offset), "MANIFEST"});  // old one pruned
  CHECK(f.metrics.get(Metric::checkpoints_total) == 1);
  CHECK(f.metrics.get(Metric::checkpoint_offset) == double(offset));
  CHECK(f.metrics.get(Metric::checkpoint_bytes) == double(f.store->latest()->size));
  CHECK(f.metrics.get(Metric::checkpoint_in_progress) == 0);
}

TEST_CASE("a checkpoint waits for the log to be durable up to its offset, and gives up in time") {
  Fixture f(300);
  std::string msg;
  REQUIRE(f.ck->request("warm-up", &msg) == Checkpointer::Answer::started);  // creates the backlog
  REQUIRE(f.run_to_end());
  Client c(f.srv.port());
  for (int i = 0; i < 20; ++i) c.cmd({"SET", "k" + std::to_string(i), "v"});
  auto [replid, offset] = f.upstream_position();
  REQUIRE(offset > 0);
  f.log->reset(replid, 0);  // the log has not received the writes yet
  REQUIRE(f.durable_at(0));

  REQUIRE(f.ck->request("test", &msg) == Checkpointer::Answer::started);
  REQUIRE(f.until([&] { return f.status().find("waiting_for_log") != std::string::npos; },
                  "the checkpoint to wait for the log"));
  CHECK(f.ck->request("again", &msg) == Checkpointer::Answer::busy);
  CHECK(msg.find("already running (waiting_for_log") != std::string::npos);
  REQUIRE(f.run_to_end());
  CHECK_MESSAGE(f.status().find("gave up after 300 ms waiting for the log to be durable up to offset " +
                                std::to_string(offset) + " (now 0)") != std::string::npos,
                f.status());
  for (auto& name : f.checkpoint_files()) CHECK(name.find(".tmp") == std::string::npos);

  // Once the log holds the bytes up to the upstream's offset, it is published.
  f.log->append(std::string(offset, 'x'));
  REQUIRE(f.durable_at(offset));
  REQUIRE(f.ck->request("test", &msg) == Checkpointer::Answer::started);
  REQUIRE(f.run_to_end());
  REQUIRE(f.store->latest());
  CHECK(f.store->latest()->offset == offset);
}

TEST_CASE("not ready: requests are refused and nothing is published until ready again") {
  Fixture f;
  f.ready = false;
  std::string msg;
  CHECK(f.ck->request("test", &msg) == Checkpointer::Answer::not_ready);
  CHECK(msg == "not ready: the test says so");
  f.ready = true;
  REQUIRE(f.ck->request("warm-up", &msg) == Checkpointer::Answer::started);
  REQUIRE(f.run_to_end());
  auto [replid, offset] = f.upstream_position();
  f.log->reset(replid, offset);
  REQUIRE(f.durable_at(offset));

  REQUIRE(f.ck->request("test", &msg) == Checkpointer::Answer::started);
  f.ready = false;  // e.g. the upstream was lost and a restore may read the store
  REQUIRE(f.run_ticking([&] { return f.status().find("\"phase\":\"waiting_for_log\"") != std::string::npos; },
                        "the checkpoint to reach waiting_for_log"));
  // Negative proof: while not ready it stays there (ticks keep coming).
  f.tick_for(300);
  CHECK_MESSAGE(f.status().find("\"phase\":\"waiting_for_log\"") != std::string::npos, f.status());
  CHECK(!f.store->latest());  // nothing published meanwhile
  f.ready = true;
  REQUIRE(f.run_to_end());
  REQUIRE(f.store->latest());
  CHECK(f.store->latest()->offset == offset);
}

TEST_CASE("abandon drops the running checkpoint and leaves no temp file") {
  Fixture f;
  std::string msg;
  REQUIRE(f.ck->request("warm-up", &msg) == Checkpointer::Answer::started);
  REQUIRE(f.run_to_end());
  Client c(f.srv.port());
  uint64_t x = 88172645463325252ull;  // xorshift: values LZF cannot shrink
  for (int i = 0; i < 2000; ++i) {
    std::string v(10000, ' ');
    for (auto& ch : v) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      ch = static_cast<char>('a' + x % 26);
    }
    c.cmd({"SET", "k" + std::to_string(i), v});
  }
  auto [replid, offset] = f.upstream_position();
  f.log->reset(replid, offset);
  REQUIRE(f.durable_at(offset));

  REQUIRE(f.ck->request("test", &msg) == Checkpointer::Answer::started);
  REQUIRE(f.until([&] { return f.status().find("receiving_rdb") != std::string::npos; },
                  "the checkpoint to receive the RDB"));
  // The checkpoint link names itself: CLIENT LIST tells it from the others.
  CHECK(Client(f.srv.port()).cmd({"CLIENT", "LIST"}).find("name=durable-proxy-checkpoint") != std::string::npos);
  bool temp_seen = false;
  for (auto& name : f.checkpoint_files()) temp_seen |= name.find(".tmp") != std::string::npos;
  CHECK(temp_seen);
  f.ck->abandon("the test abandons it");
  REQUIRE(f.until([&] { return !f.ck->running(); }, "the abandoned checkpoint to stop"));
  CHECK(f.status().find("abandoned: the test abandons it") != std::string::npos);
  for (auto& name : f.checkpoint_files()) CHECK(name.find(".tmp") == std::string::npos);
  CHECK(!f.store->latest());
  // The store is free again: a new request runs to the end.
  REQUIRE(f.ck->request("test", &msg) == Checkpointer::Answer::started);
  REQUIRE(f.run_to_end());
  REQUIRE(f.store->latest());
  CHECK(f.store->latest()->offset == offset);
  CHECK(f.store->latest()->size > 2000u * 9000u);  // the random values, barely compressed
}

namespace {
// The history hooks of a test: counts pauses and keeps the result.
struct HistoryProbe {
  int pauses = 0, resumes = 0;
  bool done = false;
  Checkpointer::HistoryResult result;
  Checkpointer::HistoryHooks hooks() {
    Checkpointer::HistoryHooks h;
    h.pause = [this] { pauses++; };
    h.resume = [this] { resumes++; };
    h.done = [this](const Checkpointer::HistoryResult& r) {
      done = true;
      result = r;
    };
    return h;
  }
};
const std::string kNewReplid = "1234567890123456789012345678901234567890";
}  // namespace

TEST_CASE("the main link's full resync is committed on the pool, then the log follows the new history") {
  Fixture f;
  HistoryProbe probe;
  std::string error;
  REQUIRE_MESSAGE(f.ck->begin_history(kNewReplid, 5000, probe.hooks(), &error), error);
  CHECK(f.ck->history_running());
  CHECK(f.ck->running());  // no automatic checkpoint meanwhile
  std::string msg;
  CHECK(f.ck->request("test", &msg) == Checkpointer::Answer::busy);
  const std::string chunk(300 << 10, 'r');
  for (int i = 0; i < 10; ++i) f.ck->history_data(chunk);  // 3 MB: several pool jobs of 1 MB
  f.ck->history_complete();
  // The commit (fsync, rename, MANIFEST) is not done on the caller's turn.
  CHECK_FALSE(probe.done);
  REQUIRE(f.until([&] { return probe.done; }, "the resync's checkpoint to be committed"));
  CHECK_MESSAGE(probe.result.ok, probe.result.error);
  CHECK(probe.result.offset == 5000);
  CHECK(probe.result.rdb_bytes == 10 * chunk.size());
  CHECK(f.log->replid() == kNewReplid);
  CHECK(f.log->end_offset() == 5000);
  REQUIRE(f.store->latest());
  CHECK(f.store->latest()->offset == 5000);
  CHECK(f.store->latest()->size == 10 * chunk.size());
  CHECK_FALSE(f.ck->history_running());
  for (auto& name : f.checkpoint_files()) CHECK(name.find(".tmp") == std::string::npos);
  CHECK(f.status().find("\"completed\":0") != std::string::npos);  // not one of the checkpointer's own
}

TEST_CASE("a full resync cut before its RDB is whole leaves the old history and no temp file") {
  Fixture f;
  HistoryProbe probe;
  std::string error;
  REQUIRE_MESSAGE(f.ck->begin_history(kNewReplid, 7000, probe.hooks(), &error), error);
  f.ck->history_data(std::string(100, 'r'));
  bool temp_seen = false;
  for (auto& name : f.checkpoint_files()) temp_seen |= name.find(".tmp") != std::string::npos;
  CHECK(temp_seen);
  f.ck->abandon("the test cuts the link");
  REQUIRE(f.until([&] { return !f.ck->running(); }, "the abandoned resync to stop"));
  CHECK_FALSE(probe.done);  // the owner said why itself
  CHECK(f.log->replid().empty());
  CHECK(!f.store->latest());
  for (auto& name : f.checkpoint_files()) CHECK(name.find(".tmp") == std::string::npos);
}

TEST_CASE("a full resync drops a running checkpoint and pauses its source while the disk lags") {
  Fixture f;
  std::string msg;
  REQUIRE(f.ck->request("test", &msg) == Checkpointer::Answer::started);
  HistoryProbe probe;
  std::string error;
  REQUIRE_MESSAGE(f.ck->begin_history(kNewReplid, 9000, probe.hooks(), &error), error);
  CHECK(f.status().find("abandoned: the main replica link began a full resync") != std::string::npos);
  // More than max_buffered_bytes (64 MB) handed over within one loop turn: the source is paused.
  const std::string chunk(8 << 20, 'r');
  for (int i = 0; i < 9; ++i) f.ck->history_data(chunk);
  CHECK(probe.pauses > 0);
  f.ck->history_complete();
  REQUIRE(f.until([&] { return probe.done; }, "the resync's checkpoint to be committed"));
  CHECK_MESSAGE(probe.result.ok, probe.result.error);
  CHECK(probe.resumes > 0);
  CHECK(f.log->replid() == kNewReplid);
  REQUIRE(f.store->latest());
  CHECK(f.store->latest()->size == 9 * chunk.size());
}
