// The cluster restore's file work (proxy/recovery/aof_restorer.h): the
// multi-part AOF a node loads with DEBUG LOADAOF, written from a real log
// directory and a checkpoint file.  (The whole path, with a Valkey cluster
// node, is tests/integration/test_cluster_restore.py.)
#include "proxy/recovery/aof_restorer.h"

#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "log/durable_log.h"
#include "unit/test_deadline.h"

using dp::AofRestorer;

namespace {
std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct LogDir {
  std::string root;
  std::string log, rdb, aof;
  LogDir() {
    char tmpl[] = "/tmp/dp-aof-test-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    root = tmpl;
    log = root + "/log";
    rdb = root + "/cp.rdb";
    aof = root + "/node/appendonlydir";
    std::filesystem::create_directories(root + "/node");
    std::ofstream(rdb, std::ios::binary) << std::string("REDIS0011\xff checkpoint bytes", 26);
  }
  ~LogDir() { std::filesystem::remove_all(root); }
  // A log from offset 100 holding `stream`, durable.
  void write(const std::string& stream) {
    dp::log::LogOptions o;
    o.dir = log;
    o.segment_bytes = 1 << 16;
    std::string err;
    auto l = dp::log::DurableLog::open(o, &err);
    REQUIRE_MESSAGE(l, err);
    l->reset("0123456789012345678901234567890123456789", 100);
    l->append(stream);
    REQUIRE(dp::test::wait_until([&] { return l->durable_offset() >= 100 + stream.size(); }, "the log durable"));
  }
};

std::string cmd(std::initializer_list<std::string_view> args) {
  std::string s = "*" + std::to_string(args.size()) + "\r\n";
  for (std::string_view a : args) s += "$" + std::to_string(a.size()) + "\r\n" + std::string(a) + "\r\n";
  return s;
}
}  // namespace

TEST_CASE("the AOF holds the checkpoint as its base and the log's commands, without replication chatter") {
  LogDir d;
  const std::string kept = cmd({"SELECT", "1"}) + cmd({"SET", "a", "1"}) + cmd({"MULTI"}) + cmd({"INCR", "n"}) +
                           cmd({"EXEC"});
  const std::string stream = cmd({"PING"}) + kept.substr(0, 20) + kept.substr(20) + cmd({"REPLCONF", "GETACK", "*"}) +
                             cmd({"CLUSTER", "SETSLOT", "7", "NODE", "abc"}) + cmd({"DEL", "a"}) +
                             "*3\r\n$3\r\nSET\r\n$1\r\nb";  // cut at the log end: never acknowledged
  d.write(stream);
  AofRestorer::Files f = AofRestorer::files(d.aof, "appendonly.aof");
  uint64_t bytes = 0, commands = 0;
  REQUIRE(AofRestorer::write_aof(f, d.rdb, d.log, 100, 100 + stream.size(), &bytes, &commands) == "");
  CHECK(slurp(f.base) == slurp(d.rdb));
  CHECK(slurp(f.incr) == kept + cmd({"DEL", "a"}));
  CHECK(commands == 6);
  CHECK(bytes == stream.size() - std::string("*3\r\n$3\r\nSET\r\n$1\r\nb").size());
  CHECK(slurp(f.manifest) ==
        "file appendonly.aof.dp.base.rdb seq 1 type b\nfile appendonly.aof.dp.incr.aof seq 1 type i\n");
  CHECK_FALSE(std::filesystem::exists(f.manifest + ".tmp"));
  AofRestorer::remove_aof(f);
  CHECK_FALSE(std::filesystem::exists(f.manifest));
  CHECK_FALSE(std::filesystem::exists(f.base));
  CHECK_FALSE(std::filesystem::exists(f.incr));
}

TEST_CASE("a manifest already in the node's AOF directory is never overwritten") {
  LogDir d;
  d.write(cmd({"SET", "a", "1"}));
  AofRestorer::Files f = AofRestorer::files(d.aof, "appendonly.aof");
  std::filesystem::create_directories(d.aof);
  std::ofstream(f.manifest) << "file appendonly.aof.1.base.rdb seq 1 type b\n";
  uint64_t bytes = 0, commands = 0;
  std::string err = AofRestorer::write_aof(f, d.rdb, d.log, 100, 100 + cmd({"SET", "a", "1"}).size(), &bytes, &commands);
  CHECK(err.find("already holds a manifest") != std::string::npos);
  CHECK(err.find(f.manifest) != std::string::npos);
  CHECK(slurp(f.manifest) == "file appendonly.aof.1.base.rdb seq 1 type b\n");
}

TEST_CASE("the marker names the node process the restore loaded") {
  LogDir d;
  std::filesystem::create_directories(d.log);
  CHECK_FALSE(dp::aof_restore_marked(d.log, "r1"));
  std::ofstream(d.log + "/" + dp::kAofRestoreMarker) << "r1\n";
  CHECK(dp::aof_restore_marked(d.log, "r1"));
  CHECK_FALSE(dp::aof_restore_marked(d.log, "r2"));
  CHECK_FALSE(dp::aof_restore_marked(d.log, ""));
}

TEST_CASE("the cluster node id file is replaced whole, and a failure names the file") {
  LogDir d;
  std::filesystem::create_directories(d.log);
  const std::string path = d.log + "/" + dp::kClusterNodeIdFile;
  auto read = [&] {
    std::string id;
    std::ifstream in(path);
    std::getline(in, id);
    return id;
  };
  CHECK(dp::write_cluster_node_id(d.log, "aaaa") == "");
  CHECK(read() == "aaaa");
  CHECK(dp::write_cluster_node_id(d.log, "bbbb") == "");
  CHECK(read() == "bbbb");
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
  const std::string err = dp::write_cluster_node_id(d.root + "/missing", "cccc");
  CHECK(err.find(d.root + "/missing/" + dp::kClusterNodeIdFile) != std::string::npos);
  CHECK(read() == "bbbb");
}

TEST_CASE("a log that ends inside a transaction leaves it out; our own manifest of a stopped restore is replaced") {
  LogDir d;
  const std::string whole = cmd({"SELECT", "0"}) + cmd({"MULTI"}) + cmd({"SET", "a", "1"}) + cmd({"EXEC"}) +
                            cmd({"CLUSTER", "SYNCSLOTS", "ESTABLISH", "x"});
  const std::string open_tx = cmd({"MULTI"}) + cmd({"SET", "b", "2"}) + cmd({"INCR", "n"});
  d.write(whole + open_tx);
  AofRestorer::Files f = AofRestorer::files(d.aof, "appendonly.aof");
  uint64_t bytes = 0, commands = 0;
  REQUIRE(AofRestorer::write_aof(f, d.rdb, d.log, 100, 100 + whole.size() + open_tx.size(), &bytes, &commands) == "");
  CHECK(slurp(f.incr) == whole);  // SYNCSLOTS kept (Valkey's own AOF holds it); the open MULTI not
  CHECK(commands == 5);
  CHECK(bytes == whole.size());
  // A proxy that stopped mid-restore left its manifest: the next restore
  // writes over it (a manifest naming other files is refused: above).
  const std::string left = slurp(f.manifest);
  REQUIRE(AofRestorer::write_aof(f, d.rdb, d.log, 100, 100 + whole.size(), &bytes, &commands) == "");
  CHECK(slurp(f.manifest) == left);
  AofRestorer::remove_aof(f);
  CHECK_FALSE(std::filesystem::exists(f.dir));  // created for the restore, removed with it
}

TEST_CASE("a failed write leaves none of the restore's files behind and never a foreign manifest removed") {
  LogDir d;
  d.write(cmd({"SET", "a", "1"}));
  AofRestorer::Files f = AofRestorer::files(d.aof, "appendonly.aof");
  uint64_t bytes = 0, commands = 0;
  // The checkpoint is missing: nothing is left in the AOF directory.
  std::string err = AofRestorer::write_aof(f, d.root + "/no-such.rdb", d.log, 100, 100 + cmd({"SET", "a", "1"}).size(),
                                           &bytes, &commands);
  CHECK(err.find("no-such.rdb") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(f.base));
  CHECK_FALSE(std::filesystem::exists(f.manifest));
  // A foreign manifest survives remove_aof.
  std::filesystem::create_directories(d.aof);
  std::ofstream(f.manifest) << "file appendonly.aof.1.base.rdb seq 1 type b\n";
  AofRestorer::remove_aof(f);
  CHECK(std::filesystem::exists(f.manifest));
}
