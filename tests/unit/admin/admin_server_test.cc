// The admin server on a real loop: the loop runs in a thread, the test talks
// to it with plain blocking sockets.
#include "proxy/admin/admin_server.h"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "unit/test_deadline.h"

using namespace dp::admin;

namespace {

class ServerOnLoop {
 public:
  ServerOnLoop(AdminOptions opts, AdminHandlers handlers) {
    REQUIRE(uv_loop_init(&loop_) == 0);
    opts.port = 0;
    server_ = std::make_unique<AdminServer>(&loop_, std::move(opts), std::move(handlers));
    std::string error;
    REQUIRE_MESSAGE(server_->start(&error), error);
    port_ = server_->port();
    stop_.data = this;
    uv_async_init(&loop_, &stop_, [](uv_async_t* a) {
      auto* self = static_cast<ServerOnLoop*>(a->data);
      self->server_->close([self] { self->closed_ = true; });
      uv_close(reinterpret_cast<uv_handle_t*>(&self->stop_), nullptr);
    });
    thread_ = std::thread([this] { uv_run(&loop_, UV_RUN_DEFAULT); });
  }
  ~ServerOnLoop() {
    uv_async_send(&stop_);
    thread_.join();
    CHECK(closed_);
    server_.reset();
    CHECK(uv_loop_close(&loop_) == 0);
  }
  uint16_t port() const { return port_; }

 private:
  uv_loop_t loop_{};
  uv_async_t stop_{};
  std::unique_ptr<AdminServer> server_;
  uint16_t port_ = 0;
  bool closed_ = false;  // written on the loop thread before join
  std::thread thread_;
};

int connect_to(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  return fd;
}

void send_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    const ssize_t n = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;  // the server may close early (413): the reply tells
    off += static_cast<size_t>(n);
  }
}

struct Reply {
  int status = 0;  // 0: connection closed (or timed out) without a reply
  std::string head, body;
};

// Reads one response (head + Content-Length body); `buffer` keeps bytes of
// the next one.
Reply read_reply(int fd, std::string& buffer) {
  Reply r;
  char chunk[4096];
  size_t head_end;
  while ((head_end = buffer.find("\r\n\r\n")) == std::string::npos) {
    const ssize_t n = recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return r;
    buffer.append(chunk, static_cast<size_t>(n));
  }
  r.head = buffer.substr(0, head_end + 4);
  const size_t cl = r.head.find("Content-Length: ");
  const size_t len = cl == std::string::npos ? 0 : std::stoul(r.head.substr(cl + 16));
  while (buffer.size() < head_end + 4 + len) {
    const ssize_t n = recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return r;
    buffer.append(chunk, static_cast<size_t>(n));
  }
  r.body = buffer.substr(head_end + 4, len);
  buffer.erase(0, head_end + 4 + len);
  r.status = std::stoi(r.head.substr(9, 3));
  return r;
}

Reply request(uint16_t port, const std::string& text) {
  const int fd = connect_to(port);
  send_all(fd, text);
  std::string buffer;
  Reply r = read_reply(fd, buffer);
  close(fd);
  return r;
}

// True when the server closed the connection (EOF), false on timeout or data.
bool closed_by_server(int fd) {
  char c;
  return recv(fd, &c, 1, 0) == 0;
}

AdminHandlers test_handlers(std::atomic<int>* checkpoints) {
  AdminHandlers h;
  h.metrics = [] { return std::string("durable_proxy_ready 1\n"); };
  h.ready = [](std::string* reason) {
    *reason = "replica link not streaming";
    return false;
  };
  h.status_json = [] { return std::string("{\"ok\":true}"); };
  h.checkpoint = [checkpoints](std::string* m) {
    ++*checkpoints;
    *m = "started";
    return true;
  };
  return h;
}

}  // namespace

TEST_CASE("the server answers every endpoint over TCP with the router's status codes") {
  std::atomic<int> checkpoints{0};
  ServerOnLoop s({}, test_handlers(&checkpoints));
  CHECK(request(s.port(), "GET /healthz HTTP/1.1\r\n\r\n").status == 200);
  Reply m = request(s.port(), "GET /metrics HTTP/1.1\r\n\r\n");
  CHECK(m.status == 200);
  CHECK(m.body == "durable_proxy_ready 1\n");
  CHECK(m.head.find("Content-Type: text/plain; version=0.0.4") != std::string::npos);
  Reply r = request(s.port(), "GET /readyz HTTP/1.1\r\n\r\n");
  CHECK(r.status == 503);
  CHECK(r.body == "not ready: replica link not streaming\n");
  CHECK(request(s.port(), "GET /status HTTP/1.1\r\n\r\n").body == "{\"ok\":true}\n");
  CHECK(request(s.port(), "POST /checkpoint HTTP/1.1\r\nContent-Length: 0\r\n\r\n").status == 202);
  CHECK(checkpoints == 1);
  CHECK(request(s.port(), "GET /missing HTTP/1.1\r\n\r\n").status == 404);
  CHECK(request(s.port(), "PUT /metrics HTTP/1.1\r\n\r\n").status == 405);
}

TEST_CASE("keep-alive serves several requests, pipelined ones in order, on one connection") {
  std::atomic<int> checkpoints{0};
  ServerOnLoop s({}, test_handlers(&checkpoints));
  const int fd = connect_to(s.port());
  std::string buffer;
  send_all(fd, "GET /healthz HTTP/1.1\r\n\r\n");
  CHECK(read_reply(fd, buffer).status == 200);
  send_all(fd, "GET /status HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\nGET /readyz HTTP/1.1\r\n\r\n");
  CHECK(read_reply(fd, buffer).status == 200);
  CHECK(read_reply(fd, buffer).status == 404);
  Reply last = read_reply(fd, buffer);
  CHECK(last.status == 503);
  CHECK(last.head.find("Connection: keep-alive") != std::string::npos);
  close(fd);
}

TEST_CASE("Connection: close and HTTP/1.0 get one reply and then end of stream") {
  std::atomic<int> checkpoints{0};
  ServerOnLoop s({}, test_handlers(&checkpoints));
  for (const char* text : {"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n", "GET /healthz HTTP/1.0\r\n\r\n"}) {
    const int fd = connect_to(s.port());
    send_all(fd, text);
    std::string buffer;
    Reply r = read_reply(fd, buffer);
    CHECK(r.status == 200);
    CHECK(r.head.find("Connection: close") != std::string::npos);
    CHECK(closed_by_server(fd));
    close(fd);
  }
}

TEST_CASE("with a token, /metrics needs it and answers 401 with WWW-Authenticate: Bearer") {
  std::atomic<int> checkpoints{0};
  AdminOptions opts;
  opts.token = "t0ken";
  ServerOnLoop s(opts, test_handlers(&checkpoints));
  Reply no = request(s.port(), "GET /metrics HTTP/1.1\r\n\r\n");
  CHECK(no.status == 401);
  CHECK(no.head.find("WWW-Authenticate: Bearer") != std::string::npos);
  CHECK(request(s.port(), "GET /metrics HTTP/1.1\r\nAuthorization: Bearer nope\r\n\r\n").status == 401);
  CHECK(request(s.port(), "GET /metrics HTTP/1.1\r\nAuthorization: Bearer t0ken\r\n\r\n").status == 200);
  CHECK(request(s.port(), "POST /checkpoint HTTP/1.1\r\n\r\n").status == 401);
  CHECK(checkpoints == 0);
}

TEST_CASE("malformed HTTP gets 400 and oversized requests 413, then the connection closes") {
  std::atomic<int> checkpoints{0};
  AdminOptions opts;
  opts.max_request_bytes = 1024;
  ServerOnLoop s(opts, test_handlers(&checkpoints));

  auto expect = [&](const std::string& text, int status) {
    const int fd = connect_to(s.port());
    send_all(fd, text);
    std::string buffer;
    Reply r = read_reply(fd, buffer);
    CHECK(r.status == status);
    CHECK(r.head.find("Connection: close") != std::string::npos);
    CHECK(closed_by_server(fd));
    close(fd);
  };
  expect("NOT HTTP AT ALL\r\n\r\n", 400);
  expect(std::string("GET /\0 HTTP/1.1\r\n\r\n", 19), 400);
  expect("GET /healthz HTTP/1.1\r\nX-Big: " + std::string(5000, 'a') + "\r\n\r\n", 413);
  expect("POST /checkpoint HTTP/1.1\r\nContent-Length: 999999\r\n\r\n", 413);
  expect("GET /" + std::string(2000, 'p') + " HTTP/1.1\r\n\r\n", 413);
  // A body far bigger than the socket buffers: the 413 must still arrive.
  expect("POST /checkpoint HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" +
             std::string("8000\r\n") + std::string(0x8000, 'b') + "\r\n", 413);
  CHECK(checkpoints == 0);
  // The server still serves well-formed requests afterwards.
  CHECK(request(s.port(), "GET /healthz HTTP/1.1\r\n\r\n").status == 200);
}

TEST_CASE("connections past max_connections are closed; freed slots are reused") {
  std::atomic<int> checkpoints{0};
  AdminOptions opts;
  opts.max_connections = 3;
  ServerOnLoop s(opts, test_handlers(&checkpoints));
  std::vector<int> kept;
  std::string buffer;
  for (int i = 0; i < 3; ++i) {
    kept.push_back(connect_to(s.port()));
    send_all(kept.back(), "GET /healthz HTTP/1.1\r\n\r\n");
    CHECK(read_reply(kept.back(), buffer).status == 200);  // accepted and served
  }
  const int extra = connect_to(s.port());
  send_all(extra, "GET /healthz HTTP/1.1\r\n\r\n");
  CHECK(read_reply(extra, buffer).status == 0);
  close(extra);
  close(kept.back());
  kept.pop_back();
  // The server learns of the close asynchronously: retry until it has.
  int status = 0;
  CHECK(dp::test::wait_until(
      [&] { return (status = request(s.port(), "GET /healthz HTTP/1.1\r\n\r\n").status) == 200; },
      "a freed connection slot to serve /healthz", dp::test::kDefaultWait,
      [&] { return "status " + std::to_string(status); }));
  for (int fd : kept) close(fd);
}

TEST_CASE("many concurrent keep-alive connections are all served") {
  std::atomic<int> checkpoints{0};
  ServerOnLoop s({}, test_handlers(&checkpoints));
  std::vector<int> fds;
  for (int i = 0; i < 60; ++i) fds.push_back(connect_to(s.port()));
  int ok = 0;
  for (int round = 0; round < 3; ++round)
    for (int fd : fds) {
      send_all(fd, "GET /metrics HTTP/1.1\r\n\r\n");
      std::string buffer;
      ok += read_reply(fd, buffer).status == 200;
    }
  CHECK(ok == 180);
  for (int fd : fds) close(fd);
}

TEST_CASE("a connection with no complete request within the idle timeout is closed") {
  std::atomic<int> checkpoints{0};
  AdminOptions opts;
  opts.idle_timeout_ms = 150;
  ServerOnLoop s(opts, test_handlers(&checkpoints));
  const int idle = connect_to(s.port());
  const int slow = connect_to(s.port());
  send_all(slow, "GET /healthz HTTP/1.1\r\n");  // never finished
  const auto start = std::chrono::steady_clock::now();
  CHECK(closed_by_server(idle));
  CHECK(closed_by_server(slow));
  CHECK(std::chrono::steady_clock::now() - start < dp::test::scaled(std::chrono::seconds(3)));
  close(idle);
  close(slow);
}

TEST_CASE("close() with open connections finishes and leaves no handle on the loop") {
  std::atomic<int> checkpoints{0};
  std::vector<int> fds;
  {
    ServerOnLoop s({}, test_handlers(&checkpoints));
    for (int i = 0; i < 5; ++i) fds.push_back(connect_to(s.port()));
    send_all(fds[0], "GET /healthz HTTP/1.1\r\n");  // half a request in flight
    std::string buffer;
    send_all(fds[1], "GET /healthz HTTP/1.1\r\n\r\n");
    CHECK(read_reply(fds[1], buffer).status == 200);
  }  // ~ServerOnLoop checks on_closed ran and uv_loop_close == 0
  for (int fd : fds) {
    CHECK(closed_by_server(fd));
    close(fd);
  }
}

TEST_CASE("start() names the address when it cannot listen") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  {
    AdminOptions bad;
    bad.host = "not-an-ip";
    AdminServer s(&loop, bad, {});
    std::string error;
    CHECK_FALSE(s.start(&error));
    CHECK(error.find("not-an-ip:9379") != std::string::npos);
    s.close(nullptr);
  }
  {
    AdminOptions first;
    first.port = 0;
    AdminServer a(&loop, first, {});
    std::string error;
    REQUIRE(a.start(&error));
    AdminOptions same;
    same.port = a.port();
    AdminServer b(&loop, same, {});
    CHECK_FALSE(b.start(&error));
    CHECK(error.find("127.0.0.1:" + std::to_string(a.port())) != std::string::npos);
    CHECK(error.find("address already in use") != std::string::npos);
    int closed = 0;
    a.close([&] { ++closed; });
    b.close([&] { ++closed; });
    b.close([&] { ++closed; });  // idempotent: the callback is still called once
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(closed == 3);
  }
  CHECK(uv_loop_close(&loop) == 0);
}
