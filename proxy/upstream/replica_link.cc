#include "proxy/upstream/replica_link.h"

#include <netdb.h>

#include <algorithm>
#include <cassert>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <optional>

#include "proxy/base/info_fields.h"
#include "proxy/base/logger.h"

namespace dp::upstream {
namespace {

constexpr size_t kReadBufBytes = 64 * 1024;
constexpr size_t kMaxLine = 64 * 1024;
constexpr int64_t kMaxInfoBytes = 1 << 20;
constexpr uint64_t kTickMs = 100;
constexpr uint64_t kEarlyAckMs = 100;  // ACK repeat after the RDB until stream bytes flow
constexpr size_t kMarkLen = 40;

bool parse_u64(std::string_view s, uint64_t* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

// "7.2.4" -> true when >= 7.2 (the first version that knows REPLCONF ... FACK).
bool version_has_fack(std::string_view v) {
  unsigned major = 0, minor = 0;
  auto dot = v.find('.');
  if (dot == std::string_view::npos) return false;
  std::from_chars(v.data(), v.data() + dot, major);
  auto rest = v.substr(dot + 1);
  std::from_chars(rest.data(), rest.data() + rest.size(), minor);
  return major > 7 || (major == 7 && minor >= 2);
}

std::string_view trim_cr(std::string_view s) {
  if (!s.empty() && s.back() == '\r') s.remove_suffix(1);
  return s;
}

}  // namespace

std::string info_server_replconf_version(std::string_view info) {
  auto v = info_field(info, "valkey_version");
  if (!v) return "";
  // Exactly "M.m.p", digits only: the server's version2num() rejects anything else.
  unsigned parts[3] = {0, 0, 0};
  std::string_view rest = *v;
  for (int i = 0; i < 3; ++i) {
    auto [p, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), parts[i]);
    if (ec != std::errc() || parts[i] > 255) return "";
    rest.remove_prefix(static_cast<size_t>(p - rest.data()));
    if (i < 2) {
      if (rest.empty() || rest[0] != '.') return "";
      rest.remove_prefix(1);
    }
  }
  if (!rest.empty() || parts[0] < 8) return "";
  return std::string(*v);
}

bool info_server_has_fack(std::string_view info) {
  auto field = [&](std::string_view name) { return info_field(info, name); };
  // Every Valkey descends from Redis 7.2.4 and knows FACK, whatever
  // redis_version it reports (Valkey 8.0 keeps it at 7.2.4 by design).
  if (field("valkey_version") || field("server_name") == "valkey") return true;
  auto v = field("redis_version");
  return v && version_has_fack(*v);
}

const char* to_string(LinkState s) {
  switch (s) {
    case LinkState::disconnected: return "disconnected";
    case LinkState::connecting: return "connecting";
    case LinkState::handshake: return "handshake";
    case LinkState::receiving_rdb: return "receiving_rdb";
    case LinkState::streaming: return "streaming";
  }
  return "?";
}

// One connection attempt.  Freed only when its TCP handle is closed and no
// name resolution is outstanding; `detached` makes late callbacks no-ops.
struct ReplicaLink::Conn {
  ReplicaLink* link;
  bool detached = false;
  bool resolving = false;
  bool tcp_closed = false;
  bool reading = false;
  uv_getaddrinfo_t resolve{};
  uv_connect_t connect{};
  uv_tcp_t tcp{};

  void maybe_free() {
    if (resolving || !tcp_closed) return;
    ReplicaLink* l = link;
    delete this;
    l->live_conns_--;
    l->maybe_finish_close();
  }
};

namespace {
struct WriteReq {
  uv_write_t req{};
  std::string data;
};
}  // namespace

ReplicaLink::ReplicaLink(uv_loop_t* loop, ReplicaLinkOptions opts, Listener* listener)
    : loop_(loop), opts_(std::move(opts)), listener_(listener),
      read_buf_(new char[kReadBufBytes]) {
  uv_timer_init(loop_, &tick_);
  uv_check_init(loop_, &check_);
  uv_idle_init(loop_, &idle_);
  tick_.data = check_.data = idle_.data = this;
}

ReplicaLink::~ReplicaLink() {
  assert(life_.closed() && "ReplicaLink destroyed before close() completed");
}

std::string ReplicaLink::where() const {
  return "upstream " + opts_.host + ":" + std::to_string(opts_.port) + ": ";
}

void ReplicaLink::set_state(LinkState s, const std::string& reason) {
  if (s == state_) return;
  state_ = s;
  listener_->on_state(s, reason);
}

void ReplicaLink::start(const std::string& replid, uint64_t offset) {
  if (!life_.open()) return;
  if (starts_++ > 0) reconnects_++;
  detach_conn();
  psync_replid_ = (replid.empty() || replid == "?") ? "?" : replid;
  psync_offset_ = offset;
  line_.clear();
  info_.clear();
  info_left_ = -1;
  pending_error_.clear();
  rdb_ = Rdb::preamble;
  tail_len_ = 0;
  fack_ = false;
  replconf_version_.clear();

  conn_ = new Conn{this};
  live_conns_++;
  uv_tcp_init(loop_, &conn_->tcp);
  conn_->tcp.data = conn_;
  connect_started_ms_ = uv_now(loop_);
  uv_timer_start(&tick_, [](uv_timer_t* t) { static_cast<ReplicaLink*>(t->data)->on_tick(); },
                 kTickMs, kTickMs);
  set_state(LinkState::connecting);
  if (conn_ == nullptr || state_ != LinkState::connecting) return;  // listener reacted

  sockaddr_storage addr{};
  if (uv_ip4_addr(opts_.host.c_str(), opts_.port, reinterpret_cast<sockaddr_in*>(&addr)) == 0 ||
      uv_ip6_addr(opts_.host.c_str(), opts_.port, reinterpret_cast<sockaddr_in6*>(&addr)) == 0) {
    addrinfo ai{};
    ai.ai_addr = reinterpret_cast<sockaddr*>(&addr);
    connect_resolved(conn_, &ai);
    return;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  conn_->resolve.data = conn_;
  std::string port = std::to_string(opts_.port);
  int r = uv_getaddrinfo(
      loop_, &conn_->resolve,
      [](uv_getaddrinfo_t* req, int status, addrinfo* res) {
        auto* c = static_cast<Conn*>(req->data);
        c->resolving = false;
        if (!c->detached) {
          if (status < 0) {
            c->link->drop(std::string("cannot resolve host: ") + uv_strerror(status));
          } else {
            c->link->connect_resolved(c, res);
          }
        }
        uv_freeaddrinfo(res);
        c->maybe_free();
      },
      opts_.host.c_str(), port.c_str(), &hints);
  if (r < 0) {
    fail_soon(std::string("cannot resolve host: ") + uv_strerror(r));
  } else {
    conn_->resolving = true;
  }
}

void ReplicaLink::connect_resolved(Conn* c, const addrinfo* ai) {
  c->connect.data = c;
  int r = uv_tcp_connect(&c->connect, &c->tcp, ai->ai_addr, [](uv_connect_t* req, int status) {
    auto* c = static_cast<Conn*>(req->data);
    if (c->detached) return;
    if (status < 0) {
      c->link->drop(std::string("connect failed: ") + uv_strerror(status));
    } else {
      c->link->on_connected(c);
    }
  });
  if (r < 0) fail_soon(std::string("connect failed: ") + uv_strerror(r));
}

void ReplicaLink::on_connected(Conn* c) {
  uv_tcp_nodelay(&c->tcp, 1);
  last_byte_ms_ = uv_now(loop_);
  step_ = opts_.password.empty() ? Step::ping : Step::auth;
  uint64_t gen = generation_;
  set_state(LinkState::handshake);
  if (gen != generation_) return;
  start_reading();
  send_step();
}

void ReplicaLink::start_reading() {
  if (conn_ == nullptr || paused_ || conn_->reading || state_ == LinkState::connecting) return;
  conn_->reading = true;
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&conn_->tcp),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* c = static_cast<Conn*>(h->data);
        *buf = uv_buf_init(c->link->read_buf_.get(), kReadBufBytes);
      },
      [](uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
        auto* c = static_cast<Conn*>(s->data);
        if (c->detached || nread == 0) return;
        ReplicaLink* l = c->link;
        if (nread == UV_EOF) {
          l->drop("connection closed by the server (state " + std::string(to_string(l->state_)) + ")");
        } else if (nread < 0) {
          l->drop(std::string("read error: ") + uv_strerror(static_cast<int>(nread)));
        } else {
          l->last_byte_ms_ = uv_now(l->loop_);
          l->on_read(c, buf->base, static_cast<size_t>(nread));
        }
      });
}

void ReplicaLink::on_read(Conn* c, const char* data, size_t n) {
  const uint64_t gen = generation_;
  size_t i = 0;
  while (i < n && gen == generation_) {
    if (state_ == LinkState::streaming) {
      uint64_t first = received_offset_ + 1;
      received_offset_ += n - i;
      stream_flowing_ = true;
      listener_->on_stream(std::string_view(data + i, n - i), first);
      return;
    }
    if (state_ == LinkState::receiving_rdb && rdb_ != Rdb::preamble) {
      i += feed_rdb(data + i, n - i);
      continue;
    }
    if (info_left_ >= 0) {
      size_t take = std::min<size_t>(n - i, static_cast<size_t>(info_left_));
      info_.append(data + i, take);
      info_left_ -= static_cast<int64_t>(take);
      i += take;
      if (info_left_ == 0) {
        info_left_ = -1;
        fack_ = info_server_has_fack(info_);
        replconf_version_ = info_server_replconf_version(info_);
        info_.clear();
        step_ = Step::port;
        send_step();
      }
      continue;
    }
    const char* nl = static_cast<const char*>(memchr(data + i, '\n', n - i));
    if (nl == nullptr) {
      line_.append(data + i, n - i);
      if (line_.size() > kMaxLine) drop("protocol error: reply line longer than 64 KiB");
      return;
    }
    line_.append(data + i, static_cast<size_t>(nl - (data + i)));
    i = static_cast<size_t>(nl - data) + 1;
    std::string line;
    line.swap(line_);
    if (!handle_line(trim_cr(line))) return;
  }
  (void)c;
}

bool ReplicaLink::handle_line(std::string_view line) {
  if (line.empty()) return true;  // keep-alive newline while the primary prepares
  if (state_ == LinkState::handshake) return handle_reply(line);
  if (state_ != LinkState::receiving_rdb) return true;
  if (line[0] == '-') {
    drop("the server aborted the full sync: " + std::string(line));
    return false;
  }
  if (line.substr(0, 5) == "$EOF:" && line.size() == 5 + kMarkLen) {
    std::memcpy(mark_.data(), line.data() + 5, kMarkLen);
    tail_len_ = 0;
    rdb_ = Rdb::marked;
    return true;
  }
  if (line[0] == '$' && parse_u64(line.substr(1), &rdb_left_)) {
    rdb_ = Rdb::sized;
    if (rdb_left_ == 0) rdb_finished();
    return true;
  }
  drop("protocol error: expected the RDB preamble ($<len> or $EOF:<mark>), got '" +
       std::string(line.substr(0, 80)) + "'");
  return false;
}

bool ReplicaLink::handle_reply(std::string_view line) {
  const bool ok = line[0] == '+';
  switch (step_) {
    case Step::auth:
      if (!ok) {
        drop("AUTH" + (opts_.username.empty() ? "" : " as user '" + opts_.username + "'") +
             " failed: " + std::string(line));
        return false;
      }
      step_ = Step::ping;
      break;
    case Step::ping:
      if (!ok) {
        drop("PING failed: " + std::string(line));
        return false;
      }
      step_ = !opts_.client_name.empty() ? Step::setname : Step::info;
      break;
    case Step::setname:
      // A refusal (an ACL without client|setname) costs only the name.
      if (!ok)
        LOG_WARN("replica_link", "%sCLIENT SETNAME refused (%.*s); the link stays unnamed", where().c_str(),
                 static_cast<int>(line.size()), line.data());
      step_ = Step::info;
      break;
    case Step::info:
      if (line[0] == '$') {
        uint64_t len = 0;
        if (!parse_u64(line.substr(1), &len) || len > kMaxInfoBytes) {
          drop("protocol error: bad INFO reply header '" + std::string(line) + "'");
          return false;
        }
        info_left_ = static_cast<int64_t>(len) + 2;
        return true;  // step advances when the bulk is complete
      }
      // An error (e.g. ACL denies INFO): assume an old server, no FACK.
      LOG_WARN("replica_link", "%sINFO server refused (%.*s); sending ACK without FACK",
               where().c_str(), static_cast<int>(line.size()), line.data());
      step_ = Step::port;
      break;
    case Step::port:
    case Step::capa:
    case Step::version:
      // Older servers may not know these options; the replica carries on.
      if (!ok) {
        LOG_WARN("replica_link", "%sREPLCONF refused: %.*s", where().c_str(),
                 static_cast<int>(line.size()), line.data());
      }
      step_ = step_ == Step::port ? Step::capa : step_ == Step::capa ? Step::version : Step::psync;
      break;
    case Step::psync:
      return handle_psync_reply(line);
  }
  send_step();
  return true;
}

bool ReplicaLink::handle_psync_reply(std::string_view line) {
  const uint64_t gen = generation_;
  if (line.substr(0, 12) == "+FULLRESYNC ") {
    auto rest = line.substr(12);
    auto sp = rest.find(' ');
    uint64_t off = 0;
    if (sp == std::string_view::npos || !parse_u64(rest.substr(sp + 1), &off)) {
      drop("protocol error: bad PSYNC reply '" + std::string(line) + "'");
      return false;
    }
    std::string replid(rest.substr(0, sp));
    received_offset_ = off;
    stream_flowing_ = false;
    rdb_ = Rdb::preamble;
    set_state(LinkState::receiving_rdb);
    if (gen == generation_) listener_->on_full_resync(replid, off);
    return gen == generation_;
  }
  if (line == "+CONTINUE" || line.substr(0, 10) == "+CONTINUE ") {
    // psync2 servers always name their replid; report it only when it changed.
    std::string new_replid(line.size() > 10 ? line.substr(10) : std::string_view());
    if (new_replid == psync_replid_) new_replid.clear();
    received_offset_ = psync_offset_;
    stream_flowing_ = true;
    set_state(LinkState::streaming);
    if (gen == generation_) listener_->on_continue(new_replid);
    if (gen == generation_) send_ack();
    return gen == generation_;
  }
  // -NOMASTERLINK, -LOADING, -ERR ...: the owner retries later.
  drop("PSYNC " + psync_replid_ + " " +
       (psync_replid_ == "?" ? std::string("-1") : std::to_string(psync_offset_ + 1)) +
       " refused: " + std::string(line));
  return false;
}

size_t ReplicaLink::feed_rdb(const char* data, size_t n) {
  const uint64_t gen = generation_;
  if (rdb_ == Rdb::sized) {
    size_t take = static_cast<size_t>(std::min<uint64_t>(n, rdb_left_));
    rdb_left_ -= take;
    listener_->on_rdb_data(std::string_view(data, take));
    if (rdb_left_ == 0 && gen == generation_) rdb_finished();
    return take;
  }
  // EOF-marked (diskless): the last 40 bytes received so far are held back,
  // since they may be the mark.  Like the server's own replica, the mark is
  // checked at the end of each read: the primary sends nothing after it
  // until we ACK.
  auto emit = [&](const char* p, size_t len) {
    if (len > 0 && gen == generation_) listener_->on_rdb_data(std::string_view(p, len));
  };
  if (n >= kMarkLen) {
    emit(tail_.data(), tail_len_);
    emit(data, n - kMarkLen);
    std::memcpy(tail_.data(), data + n - kMarkLen, kMarkLen);
    tail_len_ = kMarkLen;
  } else {
    std::array<char, 2 * kMarkLen> tmp;
    std::memcpy(tmp.data(), tail_.data(), tail_len_);
    std::memcpy(tmp.data() + tail_len_, data, n);
    size_t t = tail_len_ + n;
    size_t out = t > kMarkLen ? t - kMarkLen : 0;
    emit(tmp.data(), out);
    std::memcpy(tail_.data(), tmp.data() + out, t - out);
    tail_len_ = t - out;
  }
  if (gen == generation_ && tail_len_ == kMarkLen && tail_ == mark_) rdb_finished();
  return n;
}

void ReplicaLink::rdb_finished() {
  const uint64_t gen = generation_;
  rdb_ = Rdb::preamble;
  stream_flowing_ = false;
  listener_->on_rdb_done();  // may report the checkpoint durable before the first ACK
  if (gen != generation_) return;
  set_state(LinkState::streaming);
  if (gen == generation_) send_ack();
}

void ReplicaLink::send_step() {
  switch (step_) {
    case Step::auth:
      if (opts_.username.empty()) {
        send_command({"AUTH", opts_.password});
      } else {
        send_command({"AUTH", opts_.username, opts_.password});
      }
      break;
    case Step::ping: send_command({"PING"}); break;
    case Step::setname: send_command({"CLIENT", "SETNAME", opts_.client_name}); break;
    case Step::info: send_command({"INFO", "server"}); break;
    case Step::port:
      if (opts_.listening_port == 0) {
        step_ = Step::capa;
        send_step();
        return;
      }
      send_command({"REPLCONF", "listening-port", std::to_string(opts_.listening_port)});
      break;
    case Step::capa: send_command({"REPLCONF", "capa", "eof", "capa", "psync2"}); break;
    case Step::version:
      if (replconf_version_.empty()) {
        step_ = Step::psync;
        send_step();
        return;
      }
      send_command({"REPLCONF", "version", replconf_version_});
      break;
    case Step::psync:
      send_command({"PSYNC", psync_replid_,
                    psync_replid_ == "?" ? std::string("-1") : std::to_string(psync_offset_ + 1)});
      break;
  }
}

void ReplicaLink::send_command(std::initializer_list<std::string_view> args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (auto a : args) {
    out += "$" + std::to_string(a.size()) + "\r\n";
    out.append(a);
    out += "\r\n";
  }
  send_raw(out.data(), out.size());
}

void ReplicaLink::send_raw(const char* data, size_t n) {
  if (conn_ == nullptr) return;
  auto* stream = reinterpret_cast<uv_stream_t*>(&conn_->tcp);
  uv_buf_t buf = uv_buf_init(const_cast<char*>(data), static_cast<unsigned>(n));
  int r = uv_try_write(stream, &buf, 1);
  if (r == static_cast<int>(n)) return;
  if (r < 0 && r != UV_EAGAIN) {
    fail_soon(std::string("write error: ") + uv_strerror(r));
    return;
  }
  size_t done = r > 0 ? static_cast<size_t>(r) : 0;
  auto* w = new WriteReq;
  w->data.assign(data + done, n - done);
  w->req.data = conn_;
  uv_buf_t rest = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  r = uv_write(&w->req, stream, &rest, 1, [](uv_write_t* req, int status) {
    auto* w = reinterpret_cast<WriteReq*>(req);
    auto* c = static_cast<Conn*>(req->data);
    if (status < 0 && status != UV_ECANCELED && !c->detached) {
      c->link->fail_soon(std::string("write error: ") + uv_strerror(status));
    }
    delete w;
  });
  if (r < 0) {
    delete w;
    fail_soon(std::string("write error: ") + uv_strerror(r));
  }
}

void ReplicaLink::send_ack() {
  if (conn_ == nullptr || state_ != LinkState::streaming) return;
  const uint64_t o = std::min(durable_offset_, received_offset_);
  char num[24];
  int len = std::snprintf(num, sizeof num, "%llu", static_cast<unsigned long long>(o));
  char out[160];
  int n = fack_ ? std::snprintf(out, sizeof out,
                                "*5\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$%d\r\n%s\r\n"
                                "$4\r\nFACK\r\n$%d\r\n%s\r\n",
                                len, num, len, num)
                : std::snprintf(out, sizeof out, "*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$%d\r\n%s\r\n",
                                len, num);
  acked_offset_ = o;
  last_ack_ms_ = uv_now(loop_);
  ack_due_ = false;
  send_raw(out, static_cast<size_t>(n));
}

void ReplicaLink::durable(uint64_t offset) {
  durable_offset_ = offset;
  if (!life_.open() || state_ != LinkState::streaming || ack_due_) return;
  ack_due_ = true;
  // check runs right after this loop turn's I/O; idle keeps the poll from
  // blocking when durable() was called before the poll phase.
  uv_check_start(&check_, [](uv_check_t* h) { static_cast<ReplicaLink*>(h->data)->on_check(); });
  uv_idle_start(&idle_, [](uv_idle_t*) {});
}

void ReplicaLink::on_check() {
  uv_check_stop(&check_);
  uv_idle_stop(&idle_);
  if (ack_due_) send_ack();
}

void ReplicaLink::ack_now() { send_ack(); }

void ReplicaLink::pause() {
  paused_ = true;
  if (conn_ != nullptr && conn_->reading) {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&conn_->tcp));
    conn_->reading = false;
  }
}

void ReplicaLink::resume() {
  if (!paused_) return;
  paused_ = false;
  last_byte_ms_ = uv_now(loop_);
  start_reading();
}

void ReplicaLink::on_tick() {
  const uint64_t now = uv_now(loop_);
  if (!pending_error_.empty()) {
    std::string why;
    why.swap(pending_error_);
    drop(why);
    return;
  }
  switch (state_) {
    case LinkState::disconnected: return;
    case LinkState::connecting:
      if (now - connect_started_ms_ >= opts_.connect_timeout_ms) {
        drop("connect timed out after " + std::to_string(opts_.connect_timeout_ms) + " ms");
      }
      return;
    case LinkState::handshake:
      if (!paused_ && now - last_byte_ms_ >= opts_.handshake_timeout_ms) {
        drop("no reply to the replica handshake within " +
             std::to_string(opts_.handshake_timeout_ms) + " ms");
      }
      return;
    case LinkState::receiving_rdb:
    case LinkState::streaming:
      if (!paused_ && now - last_byte_ms_ >= opts_.idle_timeout_ms) {
        drop("nothing received for " + std::to_string(opts_.idle_timeout_ms) + " ms (state " +
             to_string(state_) + ")");
        return;
      }
      break;
  }
  if (state_ != LinkState::streaming) return;
  // A diskless primary starts the stream only on an ACK that arrives after
  // the whole RDB was sent, so repeat it quickly until bytes flow.
  const uint64_t every = stream_flowing_ ? opts_.ack_interval_ms : kEarlyAckMs;
  if (now - last_ack_ms_ >= every) send_ack();
}

void ReplicaLink::fail_soon(std::string why) {
  if (pending_error_.empty()) pending_error_ = std::move(why);
  uv_timer_start(&tick_, [](uv_timer_t* t) { static_cast<ReplicaLink*>(t->data)->on_tick(); }, 0,
                 kTickMs);
}

void ReplicaLink::detach_conn() {
  generation_++;
  ack_due_ = false;
  uv_check_stop(&check_);
  uv_idle_stop(&idle_);
  if (conn_ == nullptr) return;
  Conn* c = conn_;
  conn_ = nullptr;
  c->detached = true;
  if (c->resolving) uv_cancel(reinterpret_cast<uv_req_t*>(&c->resolve));
  uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), [](uv_handle_t* h) {
    auto* c = static_cast<Conn*>(h->data);
    c->tcp_closed = true;
    c->maybe_free();
  });
}

void ReplicaLink::drop(const std::string& why) {
  if (!life_.open()) return;
  detach_conn();
  pending_error_.clear();
  uv_timer_stop(&tick_);
  std::string reason = where() + why;
  LOG_WARN("replica_link", "%s", reason.c_str());
  state_ = LinkState::disconnected;
  listener_->on_state(LinkState::disconnected, reason);
}

void ReplicaLink::close(std::function<void()> on_closed) {
  if (!life_.begin_close(std::move(on_closed))) return;
  detach_conn();
  state_ = LinkState::disconnected;
  auto closed = [](uv_handle_t* h) {
    auto* l = static_cast<ReplicaLink*>(h->data);
    l->pending_closes_--;
    l->maybe_finish_close();
  };
  pending_closes_ = 3;
  uv_close(reinterpret_cast<uv_handle_t*>(&tick_), closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&check_), closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&idle_), closed);
}

void ReplicaLink::maybe_finish_close() {
  if (!life_.closing() || pending_closes_ > 0 || live_conns_ > 0) return;
  life_.finish();
}

}  // namespace dp::upstream
