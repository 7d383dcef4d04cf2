#include "unit/session/session_harness.h"

#include <doctest/doctest.h>

#include "unit/command_table_data.h"
#include "unit/test_deadline.h"

namespace dp::test {

namespace {

struct WriteReq {
  uv_write_t req{};
  std::string data;
};

void write_bytes(uv_stream_t* s, std::string_view bytes) {
  auto* w = new WriteReq;
  w->data.assign(bytes);
  uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  w->req.data = w;
  if (uv_write(&w->req, s, &b, 1, [](uv_write_t* r, int) { delete static_cast<WriteReq*>(r->data); }) != 0)
    delete w;
}

void alloc(uv_handle_t*, size_t suggested, uv_buf_t* buf) {
  *buf = uv_buf_init(new char[suggested], static_cast<unsigned>(suggested));
}

sockaddr_storage bind_loopback(uv_tcp_t* tcp) {
  sockaddr_in any{};
  uv_ip4_addr("127.0.0.1", 0, &any);
  REQUIRE(uv_tcp_bind(tcp, reinterpret_cast<const sockaddr*>(&any), 0) == 0);
  sockaddr_storage bound{};
  int len = sizeof bound;
  REQUIRE(uv_tcp_getsockname(tcp, reinterpret_cast<sockaddr*>(&bound), &len) == 0);
  return bound;
}

}  // namespace

std::string command(std::initializer_list<std::string_view> args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (std::string_view a : args) out += "$" + std::to_string(a.size()) + "\r\n" + std::string(a) + "\r\n";
  return out;
}

// ---------------------------------------------------------------- FakeClient

FakeClient::FakeClient(Harness* h) : h_(h) {
  uv_tcp_init(&h->loop, &tcp_);
  tcp_.data = this;
  connect_.data = this;
  REQUIRE(uv_tcp_connect(&connect_, &tcp_, reinterpret_cast<const sockaddr*>(&h->listen_addr_), &on_connect) == 0);
}

void FakeClient::on_connect(uv_connect_t* req, int status) {
  auto* c = static_cast<FakeClient*>(req->data);
  if (status != 0 || c->closing_) return;
  c->connected_ = true;
  uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp_), alloc, &on_read);
  if (!c->unsent_.empty()) write_bytes(reinterpret_cast<uv_stream_t*>(&c->tcp_), c->unsent_);
  c->unsent_.clear();
}

void FakeClient::on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* c = static_cast<FakeClient*>(s->data);
  if (n > 0) c->got.append(buf->base, static_cast<size_t>(n));
  delete[] buf->base;
  if (n < 0) {
    c->eof_ = true;
    c->close();
  }
}

void FakeClient::send(std::string_view bytes) {
  if (closing_) return;
  if (!connected_) {
    unsent_.append(bytes);
    return;
  }
  write_bytes(reinterpret_cast<uv_stream_t*>(&tcp_), bytes);
}

void FakeClient::close() {
  if (closing_) return;
  closing_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), [](uv_handle_t* h) { static_cast<FakeClient*>(h->data)->closed_ = true; });
}

// ---------------------------------------------------------------- FakeUpstream

FakeUpstream::FakeUpstream(uv_loop_t* loop) : loop_(loop) {
  uv_tcp_init(loop, &listener_);
  listener_.data = this;
  addr_ = bind_loopback(&listener_);
  REQUIRE(uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 16, &on_connection) == 0);
}

void FakeUpstream::on_connection(uv_stream_t* server, int status) {
  auto* up = static_cast<FakeUpstream*>(server->data);
  if (status != 0) return;
  auto* c = new Conn;
  c->up = up;
  uv_tcp_init(up->loop_, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), [](uv_handle_t* h) { delete static_cast<Conn*>(h->data); });
    return;
  }
  up->conns_.push_back(c);
  uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), alloc, &on_read);
}

void FakeUpstream::on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* c = static_cast<Conn*>(s->data);
  FakeUpstream* up = c->up;
  if (n > 0) c->in.append(buf->base, static_cast<size_t>(n));
  delete[] buf->base;
  if (n < 0) {  // EOF: the session's write shutdown (or its close)
    ++up->eofs;
    if (up->close_on_eof || n != UV_EOF) up->close_conn(c);
    else uv_read_stop(s);
    return;
  }
  std::string out;
  resp::Request req;
  size_t pos = 0;
  while (pos < c->in.size()) {
    resp::ParseStatus st = c->parser.parse(std::string_view(c->in).substr(pos), &req);
    if (st == resp::ParseStatus::incomplete || st == resp::ParseStatus::error) break;
    pos += req.consumed;
    if (st == resp::ParseStatus::skip) continue;
    std::vector<std::string> args(req.args.begin(), req.args.end());
    up->commands.push_back(args);
    if (up->hold_role && args[0] == "ROLE" && !up->hold) {  // what came before goes; ROLE's answer (and after) waits
      if (!out.empty()) write_bytes(s, out);
      out.clear();
      up->hold = true;
    }
    if (up->close_at_role && args[0] == "ROLE") {  // what came before, then EOF instead of ROLE's answer
      uv_buf_t b = uv_buf_init(out.data(), static_cast<unsigned>(out.size()));
      REQUIRE(static_cast<size_t>(uv_try_write(s, &b, 1)) == out.size());  // in the kernel before the close
      up->close_conn(c);
      return;
    }
    out += up->answer(args);
  }
  c->in.erase(0, pos);
  if (out.empty()) return;
  if (up->hold) up->held_[c] += out;
  else write_bytes(s, out);
}

std::string FakeUpstream::answer(const std::vector<std::string>& args) {
  std::string name = args[0];
  for (char& ch : name) ch = static_cast<char>(ch >= 'a' && ch <= 'z' ? ch - 32 : ch);
  if (name == "PING") return "+PONG\r\n";
  if (name == "ROLE") {
    if (refuse_role) return "-NOPERM User default has no permissions to run the 'role' command\r\n";
    return "*3\r\n$6\r\nmaster\r\n:" + std::to_string(offset) + "\r\n*0\r\n";
  }
  if (name == "INFO" && args.size() == 2 && args[1] == "server") {
    std::string text = "# Server\r\nrun_id:" + run_id + "\r\n";
    return "$" + std::to_string(text.size()) + "\r\n" + text + "\r\n";
  }
  if (name == "SET" && args.size() >= 3) {
    offset += 10;
    data_[args[1]] = args[2];
    return "+OK\r\n";
  }
  auto bulk = [this](const std::string& key) {
    auto it = data_.find(key);
    if (it == data_.end()) return std::string("$-1\r\n");
    return "$" + std::to_string(it->second.size()) + "\r\n" + it->second + "\r\n";
  };
  if (name == "GET" && args.size() == 2) return bulk(args[1]);
  if (name == "MGET") {
    std::string out = "*" + std::to_string(args.size() - 1) + "\r\n";
    for (size_t i = 1; i < args.size(); ++i) out += bulk(args[i]);
    return out;
  }
  if (name == "DEL") {
    long n = 0;
    for (size_t i = 1; i < args.size(); ++i) n += static_cast<long>(data_.erase(args[i]));
    return ":" + std::to_string(n) + "\r\n";
  }
  return "+OK\r\n";
}

void FakeUpstream::answer_held() {
  for (auto& [c, out] : held_)
    if (!c->closing) write_bytes(reinterpret_cast<uv_stream_t*>(&c->tcp), out);
  held_.clear();
}

void FakeUpstream::close_conn(Conn* c) {
  if (c->closing) return;
  c->closing = true;
  held_.erase(c);
  std::erase(conns_, c);
  uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), [](uv_handle_t* h) { delete static_cast<Conn*>(h->data); });
}

void FakeUpstream::close_connections() {
  while (!conns_.empty()) close_conn(conns_.back());
}

void FakeUpstream::close() {
  close_connections();
  if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&listener_)))
    uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
}

// ---------------------------------------------------------------- Harness

Harness::Harness() {
  REQUIRE(uv_loop_init(&loop) == 0);
  gate = std::make_unique<gate::DurabilityGate>([this](uint64_t id) { probes.push_back(id); },
                                                [this](uint64_t id) -> gate::GateClient* {
                                                  auto it = sessions.find(id);
                                                  return it == sessions.end() ? nullptr : it->second;
                                                });
  upstream = std::make_unique<FakeUpstream>(&loop);
  read_buf_.reset(new char[64 * 1024]);
  ctx.loop = &loop;
  ctx.cfg = &cfg;
  ctx.table = load_command_table();  // redis-server 7.0.15
  ctx.gate = gate.get();
  ctx.metrics = &metrics;
  ctx.upstream_addr = upstream->addr();
  ctx.upstream_name = "fake upstream";
  ctx.serving = true;
  ctx.offsets_follow_log = true;
  ctx.upstream_run_id = upstream->run_id;
  ctx.read_buf = read_buf_.get();
  ctx.read_buf_size = 64 * 1024;
  ctx.session_closed = [this](Session* s) {
    sessions.erase(s->id());
    ctx.clients = sessions.size();
  };
  ctx.held_bytes_dropped = [this] {
    for (auto& [id, s] : sessions) s->maybe_resume();
  };

  uv_tcp_init(&loop, &listener_);
  listener_.data = this;
  listen_addr_ = bind_loopback(&listener_);
  REQUIRE(uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 16, &on_connection) == 0);
  uv_check_init(&loop, &check_);
  check_.data = this;
  uv_check_start(&check_, [](uv_check_t* c) {
    auto* h = static_cast<Harness*>(c->data);
    h->ctx.now_ms = uv_now(&h->loop);
    h->gate->flush();
  });
  uv_timer_init(&loop, &tick_);
  uv_timer_start(&tick_, [](uv_timer_t*) {}, 5, 5);
}

void Harness::on_connection(uv_stream_t* server, int status) {
  auto* h = static_cast<Harness*>(server->data);
  if (status != 0) return;
  uint64_t id = h->next_id_++;
  auto* s = new Session(&h->ctx, id);
  h->sessions[id] = s;
  h->ctx.clients = h->sessions.size();
  s->accept(server);
}

FakeClient& Harness::client() {
  clients.push_back(std::make_unique<FakeClient>(this));
  return *clients.back();
}

Session* Harness::session(uint64_t n) const {
  auto it = sessions.find(n + 1);
  return it == sessions.end() ? nullptr : it->second;
}

std::string Harness::state() const {
  std::string s = "sessions " + std::to_string(sessions.size()) + ", held bytes " +
                  std::to_string(ctx.total_held_bytes) + ", probes " + std::to_string(probes.size()) +
                  ", upstream commands " + std::to_string(upstream->commands.size());
  for (size_t i = 0; i < clients.size(); ++i) s += ", client " + std::to_string(i) + " got " + std::to_string(clients[i]->got.size()) + " bytes";
  return s;
}

bool Harness::run_until(const std::function<bool()>& done, std::string_view what) {
  bool ok = poll_until(done, [this] { uv_run(&loop, UV_RUN_ONCE); }, what, kDefaultWait, [this] { return state(); });
  CHECK_MESSAGE(ok, "gave up waiting for " << what);
  return ok;
}

bool Harness::run_until_held(uint64_t n, size_t count, std::string_view what) {
  return run_until([&] { return session(n) && session(n)->held_count() == count && !gate->batch_open(); }, what);
}

void Harness::make_durable(uint64_t offset) {
  for (uint64_t id : probes) gate->probe_answered(id, offset);
  gate->durable(offset);
}

Harness::~Harness() {
  for (auto& c : clients) c->close();
  run_until([this] { return sessions.empty(); }, "every session to end once its client left");
  std::map<uint64_t, Session*> left = sessions;  // (only after a failure above)
  for (auto& [id, s] : left) s->close("test teardown");
  uv_run(&loop, UV_RUN_NOWAIT);  // the check flushes what a closing session covered
  make_durable(gate->durable_offset() + 1000);
  if (pool) pool->close_all("test teardown");
  upstream->close();
  uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&check_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);  // until every handle's close callback ran
  CHECK(uv_loop_close(&loop) == 0);  // no handle left behind

  // Every gauge back to zero.
  CHECK(sessions.empty());
  CHECK(ctx.clients == 0);
  CHECK(ctx.total_held_bytes == 0);
  CHECK_FALSE(ctx.read_buf_busy);
  CHECK(gate->pending().empty());
  CHECK(gate->pending().key_count() == 0);
  CHECK(gate->waiting_batches() == 0);
  CHECK_FALSE(gate->batch_open());
  CHECK(gate->unanswered_probes().empty());
}

void Harness::enable_sharing(uint32_t connections) {
  cfg.sharing = config::UpstreamSharing::automatic;
  cfg.shared_connections = connections;
  pool = std::make_unique<SharedPool>(&ctx, connections);
  ctx.shared_pool = pool.get();
  REQUIRE(run_until([this] { return pool->sharing(); }, "the pool's probe to find that connections need no AUTH"));
}

size_t Harness::count_commands(std::string_view name) const {
  size_t n = 0;
  for (const auto& c : upstream->commands) {
    std::string upper = c.empty() ? std::string() : c[0];
    for (char& ch : upper) ch = static_cast<char>(ch >= 'a' && ch <= 'z' ? ch - 32 : ch);
    n += upper == name;
  }
  return n;
}

}  // namespace dp::test
