#include "proxy/upstream/replica_link.h"

#include <netdb.h>

#include <algorithm>
#include <cassert>

#include "proxy/base/logger.h"
#include "proxy/resp/encoder.h"

namespace dp::upstream {
namespace {

constexpr size_t kReadBufBytes = 64 * 1024;
constexpr size_t kMaxReply = (1 << 20) + 64 * 1024;  // INFO server: 1 MiB and its header
constexpr uint64_t kTickMs = 100;
constexpr uint64_t kEarlyAckMs = 100;  // ACK repeat after the RDB until stream bytes flow

}  // namespace

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
  reply_.clear();
  pending_error_.clear();
  rdb_.reset();
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
          l->on_read(buf->base, static_cast<size_t>(nread));
        }
      });
}

// Every byte read goes to what the link expects now: handshake replies, the
// RDB, or the stream.  A reply or an RDB may end inside a read; the rest of
// the read goes to the next state.
void ReplicaLink::on_read(const char* data, size_t n) {
  const uint64_t gen = generation_;
  std::string_view in(data, n);
  while (!in.empty() && gen == generation_) {
    switch (state_) {
      case LinkState::streaming: {
        uint64_t first = received_offset_ + 1;
        received_offset_ += in.size();
        stream_flowing_ = true;
        listener_->on_stream(in, first);
        return;
      }
      case LinkState::receiving_rdb: in.remove_prefix(feed_rdb(in)); break;
      case LinkState::handshake: in.remove_prefix(feed_handshake(in)); break;
      case LinkState::connecting:
      case LinkState::disconnected: return;  // nothing is expected
    }
  }
}

size_t ReplicaLink::feed_handshake(std::string_view in) {
  size_t used = 0;
  if (reply_.empty())  // newlines between replies: keep-alives
    while (used < in.size() && (in[used] == '\n' || in[used] == '\r')) used++;
  if (used == in.size()) return used;
  const size_t before = reply_.size();
  reply_.append(in.substr(used));
  size_t consumed = 0;
  resp::Value reply;
  std::string error;
  if (!resp::decode_value(reply_, &consumed, &reply, &error)) {
    if (!error.empty()) drop("protocol error in a handshake reply: " + error);
    else if (reply_.size() > kMaxReply)
      drop("protocol error: handshake reply longer than " + std::to_string(kMaxReply >> 10) + " KiB");
    return in.size();
  }
  reply_.clear();
  handle_reply(reply);
  return used + (consumed - before);  // what follows the reply is the next state's
}

size_t ReplicaLink::feed_rdb(std::string_view in) {
  const uint64_t gen = generation_;
  RdbReceiver::Result r = rdb_.feed(in);
  if (!r.held.empty()) listener_->on_rdb_data(r.held);
  if (gen == generation_ && !r.data.empty()) listener_->on_rdb_data(r.data);
  if (gen != generation_) return in.size();
  if (r.status == RdbReceiver::Status::error) {
    drop(r.error);
    return in.size();
  }
  if (r.status == RdbReceiver::Status::done) rdb_finished();
  return r.consumed;
}

void ReplicaLink::rdb_finished() {
  const uint64_t gen = generation_;
  stream_flowing_ = false;
  listener_->on_rdb_done();  // may report the checkpoint durable before the first ACK
  if (gen != generation_) return;
  set_state(LinkState::streaming);
  if (gen == generation_) send_ack();
}

void ReplicaLink::send_command(std::initializer_list<std::string_view> args) {
  std::string out;
  resp::append_command(&out, args);
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
  acked_offset_ = o;
  last_ack_ms_ = uv_now(loop_);
  ack_due_ = false;
  const std::string num = std::to_string(o);
  if (fack_) send_command({"REPLCONF", "ACK", num, "FACK", num});
  else send_command({"REPLCONF", "ACK", num});
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
