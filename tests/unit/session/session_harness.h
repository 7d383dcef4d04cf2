// A Session against fakes, in the test's own libuv loop (tests/unit/session):
//
//   FakeClient ──loopback──▶ listener ──accept──▶ Session ──loopback──▶ FakeUpstream
//                                                  │ ▲
//                                  gate.cover / probes (Harness::probes), released by the test
//
// FakeUpstream is a tiny in-memory server: it parses requests as the proxy
// does and answers SET/GET/MGET/DEL/PING from a map (anything else +OK);
// with `hold` set it records requests and answers nothing until
// answer_held(); with close_on_eof off it keeps a connection open after the
// session's write shutdown until close_connections().  The gate's probes are not sent anywhere: the test answers
// them (gate.probe_answered) and moves the durable offset (gate.durable).
//
// The Harness destructor closes every client, lets each session end,
// answers every probe, closes every handle, and checks that uv_loop_close
// returns 0 and that every gauge is back to zero: held bytes (in total),
// sessions, pending keys, waiting probe batches, the shared read buffer.
// Loop thread only (the test's thread).
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "proxy/admin/metrics.h"
#include "proxy/commands/command_table.h"
#include "proxy/gate/durability_gate.h"
#include "proxy/resp/request_parser.h"
#include "proxy/session/context.h"
#include "proxy/session/session.h"
#include "proxy/session/shared_upstream.h"

namespace dp::test {

class Harness;

// One connection of a client to the proxy's listener.
class FakeClient {
 public:
  explicit FakeClient(Harness* h);
  void send(std::string_view bytes);
  void close();  // idempotent; the client leaves
  bool connected() const { return connected_; }
  bool closed() const { return closed_; }   // handle closed (by us or after EOF)
  bool eof() const { return eof_; }         // the proxy closed the connection
  std::string got;                          // every byte received so far

 private:
  friend class Harness;
  static void on_connect(uv_connect_t* req, int status);
  static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
  Harness* h_;
  uv_tcp_t tcp_{};
  uv_connect_t connect_{};
  bool connected_ = false, closing_ = false, closed_ = false, eof_ = false;
  std::string unsent_;  // written once connected
};

// The upstream server: one FakeUpstream::Conn per session.
class FakeUpstream {
 public:
  struct Conn {
    FakeUpstream* up = nullptr;
    uv_tcp_t tcp{};
    resp::RequestParser parser;
    std::string in;
    bool closing = false;
  };
  explicit FakeUpstream(uv_loop_t* loop);
  const sockaddr_storage& addr() const { return addr_; }
  void close();  // the listener and every connection

  bool hold = false;                              // record requests, answer nothing
  bool close_on_eof = true;                       // as Valkey: a client's EOF closes its connection
  size_t eofs = 0;                                // connections whose peer shut its write side
  std::vector<std::vector<std::string>> commands; // every request received, in order
  // Replication, as far as the proxy sees it: each SET adds 10 to the
  // offset ROLE answers; INFO server names run_id; refuse_role answers ROLE
  // with -NOPERM.
  uint64_t offset = 0;
  std::string run_id = "fake-upstream-run-id";
  bool refuse_role = false;
  bool close_at_role = false;  // answer what precedes a ROLE, then close the connection
  bool hold_role = false;      // answer what precedes the next ROLE, then hold (as `hold`) from it on
  size_t open_connections() const { return conns_.size(); }
  // Answers what `hold` kept, in order, on each connection.
  void answer_held();
  void close_connections();

 private:
  static void on_connection(uv_stream_t* server, int status);
  static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
  std::string answer(const std::vector<std::string>& args);
  void close_conn(Conn* c);

  uv_loop_t* loop_;
  uv_tcp_t listener_{};
  sockaddr_storage addr_{};
  std::map<std::string, std::string> data_;
  std::vector<Conn*> conns_;
  std::map<Conn*, std::string> held_;
};

class Harness {
 public:
  Harness();
  ~Harness();

  // A new client, connected once the loop has run.
  FakeClient& client();
  // Runs the loop until done() holds; fails the test (with `what` and the
  // harness state) after the scaled default deadline.
  bool run_until(const std::function<bool()>& done, std::string_view what);
  // run_until the n-th client's session holds `count` replies and every
  // reply that waits has its probe sent (the loop turn ended).
  bool run_until_held(uint64_t n, size_t count, std::string_view what);
  // The session serving the n-th client accepted (0-based); null once closed.
  Session* session(uint64_t n) const;
  std::string state() const;  // for failure reports

  // Answers every probe sent so far at `offset` and makes the log durable
  // through it: every held reply covered so far is released.
  void make_durable(uint64_t offset);
  // upstream.sharing: auto with `connections` shared connections; returns
  // once the pool's probe found that new connections need no AUTH.
  void enable_sharing(uint32_t connections);
  // The upstream's requests named `name` (upper case), in arrival order.
  size_t count_commands(std::string_view name) const;

  uv_loop_t loop{};
  config::Config cfg;
  admin::Metrics metrics;
  ProxyContext ctx;
  std::vector<uint64_t> probes;  // ids the gate asked to send, in order
  std::unique_ptr<gate::DurabilityGate> gate;
  std::map<uint64_t, Session*> sessions;  // by id (ids count from 1 in accept order)
  std::unique_ptr<FakeUpstream> upstream;
  std::unique_ptr<SharedPool> pool;  // enable_sharing
  std::vector<std::unique_ptr<FakeClient>> clients;

 private:
  static void on_connection(uv_stream_t* server, int status);
  uv_tcp_t listener_{};
  sockaddr_storage listen_addr_{};
  uv_check_t check_{};  // end of loop turn: flush the gate's batch, as Proxy does
  uv_timer_t tick_{};   // bounds each uv_run(UV_RUN_ONCE) so run_until can give up
  std::unique_ptr<char[]> read_buf_;
  uint64_t next_id_ = 1;
  friend class FakeClient;
};

// RESP request bytes for `args` (multibulk).
std::string command(std::initializer_list<std::string_view> args);

}  // namespace dp::test
