// Test helpers: a real redis-server/valkey-server on a free loopback port
// (stopped and its directory removed by the destructor, so every test stops
// its server), a blocking hiredis client, and a libuv loop runner.
// Server binary: $DP_REDIS_SERVER, else redis-server on PATH.
#pragma once

#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "unit/test_deadline.h"

namespace dp::test {

inline uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// Reply of a blocking command as text: status/string/error lines verbatim,
// integers in decimal, arrays as their elements joined by '\n', nil as "(nil)".
inline std::string reply_text(const redisReply* r) {
  if (r == nullptr) return "(no reply)";
  switch (r->type) {
    case REDIS_REPLY_INTEGER: return std::to_string(r->integer);
    case REDIS_REPLY_NIL: return "(nil)";
    case REDIS_REPLY_ARRAY: {
      std::string out;
      for (size_t i = 0; i < r->elements; i++) out += (i ? "\n" : "") + reply_text(r->element[i]);
      return out;
    }
    default: return std::string(r->str, r->len);
  }
}

class Client {
 public:
  Client(uint16_t port, const std::string& password = {}) {
    timeval tv{5, 0};
    c_ = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c_ == nullptr || c_->err) throw std::runtime_error("cannot connect to 127.0.0.1:" + std::to_string(port));
    if (!password.empty()) cmd({"AUTH", password});
  }
  ~Client() { redisFree(c_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  std::string cmd(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(c_, static_cast<int>(args.size()), argv.data(), lens.data()));
    std::string out = reply_text(r);
    if (r) freeReplyObject(r);
    return out;
  }
  // One field of INFO <section>, e.g. info("replication", "master_repl_offset").
  std::string info(const std::string& section, const std::string& field) {
    std::string text = cmd({"INFO", section});
    auto pos = text.find("\n" + field + ":");
    if (pos == std::string::npos) return {};
    pos += field.size() + 2;
    return text.substr(pos, text.find('\r', pos) - pos);
  }
  uint64_t offset() { return std::stoull(info("replication", "master_repl_offset")); }

 private:
  redisContext* c_ = nullptr;
};

class RedisServer {
 public:
  explicit RedisServer(std::vector<std::string> extra = {}) : port_(free_port()) {
    char tmpl[] = "/tmp/dp-test-redis-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    const char* bin = std::getenv("DP_REDIS_SERVER");
    std::vector<std::string> args = {bin ? bin : "redis-server", "--port", std::to_string(port_),
                                     "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                     "--dir", dir_, "--logfile", dir_ + "/server.log",
                                     "--daemonize", "no"};
    args.insert(args.end(), extra.begin(), extra.end());
    pid_ = ::fork();
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execvp(argv[0], argv.data());
      ::_exit(127);
    }
    bool up = wait_until(
        [&] {
          timeval tv{0, 200000};
          redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
          bool ok = c && !c->err;
          if (c) redisFree(c);
          return ok;
        },
        "the server to accept connections on port " + std::to_string(port_));
    if (up) return;
    stop();
    throw std::runtime_error("redis-server did not start on port " + std::to_string(port_));
  }
  ~RedisServer() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  uint16_t port() const { return port_; }
  const std::string& dir() const { return dir_; }
  void stop(int sig = SIGKILL) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  uint16_t port_;
  std::string dir_;
  pid_t pid_ = -1;
};

// A libuv loop for one test.  End a test with CHECK(loop.close_ok()): it
// runs the loop until every handle is closed and reports whether
// uv_loop_close() succeeded (false = a leaked handle).
class Loop {
 public:
  Loop() {
    uv_loop_init(&loop_);
    uv_timer_init(&loop_, &wake_);
    // Wakes the loop so run_until() re-checks its predicate.
    uv_timer_start(&wake_, [](uv_timer_t*) {}, 5, 5);
  }
  ~Loop() {
    if (!closed_) close_ok();
  }
  bool close_ok() {
    uv_close(reinterpret_cast<uv_handle_t*>(&wake_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    closed_ = true;
    return uv_loop_close(&loop_) == 0;
  }
  uv_loop_t* get() { return &loop_; }
  // Runs the loop until done() holds: false after the scaled deadline
  // (test_deadline.h), printing `what` and the last state() seen.
  bool run_until(const std::function<bool()>& done, std::string_view what,
                 std::chrono::milliseconds timeout = kDefaultWait,
                 const std::function<std::string()>& state = {}) {
    return poll_until(done, [this] { uv_run(&loop_, UV_RUN_ONCE); }, what, timeout, state);
  }
  // Runs the loop for a fixed time: only for negative proofs ("nothing
  // arrived within ms"), after the positive event they depend on was seen.
  void run_for(int ms) {
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() <= end) uv_run(&loop_, UV_RUN_ONCE);
  }

 private:
  uv_loop_t loop_;
  uv_timer_t wake_;
  bool closed_ = false;
};

}  // namespace dp::test
