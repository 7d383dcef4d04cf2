#include "proxy/session/shared_upstream.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <string>
#include <utility>

#include "proxy/base/info_fields.h"
#include "proxy/base/logger.h"
#include "proxy/resp/encoder.h"
#include "proxy/upstream/connection_names.h"

namespace dp {

namespace {
constexpr std::string_view kRole = "*1\r\n$4\r\nROLE\r\n";
constexpr std::string_view kInfoServer = "*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n";

// ROLE's replication offset (read as ControlLink::role reads it); false if
// the answer has none (an error such as -NOPERM, or another shape).
bool role_offset(std::string_view frame, const resp::Frame& f, uint64_t* out) {
  resp::FrameElements el;
  if (f.type != '*' || !resp::frame_elements(frame.substr(f.attr_length), 5, &el) || el.items.size() < 2) return false;
  size_t at = 0;
  if (el.items[0] == "master" || el.items[0] == "primary") at = 1;
  else if ((el.items[0] == "slave" || el.items[0] == "replica") && el.items.size() >= 5) at = 4;
  else return false;
  if (el.types[at] != ':') return false;
  const std::string_view v = el.items[at];
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), *out);
  return ec == std::errc() && p == v.data() + v.size();
}

// INFO server's run_id; empty if none (an error, e.g. -NOPERM).
std::string info_run_id(std::string_view frame, const resp::Frame& f) {
  std::string_view text;
  if (f.is_error() || !resp::frame_scalar(frame.substr(f.attr_length), &text)) return {};
  std::string id;
  for_each_info_field(text, [&id](std::string_view k, std::string_view v) {
    if (k == "run_id") id = v;
  });
  return id;
}
}  // namespace

// Replies are framed without a bulk limit of the proxy's own: the server's
// strings can outgrow limits.max_bulk_len (APPEND), and a framing error
// here would close every client of the connection.
SharedUpstream::SharedUpstream(ProxyContext* ctx, uint32_t index)
    : ctx_(ctx), index_(index), framer_(UINT64_MAX / 2) {
  tcp_.data = this;
  connect_req_.data = this;
  write_req_.data = this;
  check_.data = this;
  uv_check_init(ctx_->loop, &check_);
  ++open_handles_;
  connect();
}

void SharedUpstream::connect() {
  uv_tcp_init(ctx_->loop, &tcp_);
  ++open_handles_;
  // Its name first; the reply goes to nobody.
  std::string name = "*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n";
  resp::append_bulk(&name, kSharedLinkName);
  out_.append(name);
  routes_.push_back(Route{nullptr, 1});
  ++in_flight_;
  if (ctx_->gate) {  // which process this is: its ROLE offsets count only for the verified one
    out_.append(kInfoServer);
    routes_.push_back(Route{nullptr, 1, RouteKind::run_id});
    ++in_flight_;
  }
  int rc = uv_tcp_connect(&connect_req_, &tcp_, reinterpret_cast<const sockaddr*>(&ctx_->upstream_addr),
                          &SharedUpstream::on_connect);
  if (rc != 0) fail(std::string("upstream ") + ctx_->upstream_name + " unreachable: " + uv_strerror(rc));
}

void SharedUpstream::on_connect(uv_connect_t* req, int status) {
  auto* self = static_cast<SharedUpstream*>(req->data);
  if (self->failed_) return;
  if (status != 0)
    return self->fail(std::string("upstream ") + self->ctx_->upstream_name + " unreachable: " + uv_strerror(status));
  self->connected_ = true;
  uv_tcp_nodelay(&self->tcp_, 1);
  LOG_DEBUG("shared", "shared connection %u to %s open", self->index_, self->ctx_->upstream_name.c_str());
  uv_read_start(reinterpret_cast<uv_stream_t*>(&self->tcp_), &SharedUpstream::alloc, &SharedUpstream::on_read);
  self->flush();
}

void SharedUpstream::attach(SharedClient* c) {
  c->shared_conn_ = this;
  c->shared_slot_ = attached_.size();
  attached_.push_back(c);
}

void SharedUpstream::detach(SharedClient* c) {
  if (c->shared_conn_ != this) return;
  for (Route& r : routes_)
    if (r.client == c) r.client = nullptr;
  for (SharedClient*& t : touched_)
    if (t == c) t = nullptr;
  // Swap-remove from attached_.
  SharedClient* last = attached_.back();
  attached_[c->shared_slot_] = last;
  last->shared_slot_ = c->shared_slot_;
  attached_.pop_back();
  c->shared_conn_ = nullptr;
  c->shared_touched_ = false;
}

void SharedUpstream::send(SharedClient* c, std::string_view request, bool wants_offset) {
  out_.append(request);
  role_due_ = role_due_ || wants_offset;
  ++in_flight_;
  if (!routes_.empty() && routes_.back().client == c && !routes_.back().batch_end &&
      routes_.back().wants_offset == wants_offset)
    ++routes_.back().count;
  else
    routes_.push_back(Route{c, 1, RouteKind::client, false, wants_offset});
  if (queued_bytes() >= bound()) was_full_ = true;
  schedule_flush();
}

void SharedUpstream::schedule_flush() {
  if (connected_ && !writing_now_ && !failed_ && !uv_is_active(reinterpret_cast<uv_handle_t*>(&check_)))
    uv_check_start(&check_, &SharedUpstream::on_check);
}

void SharedUpstream::on_check(uv_check_t* c) {
  auto* self = static_cast<SharedUpstream*>(c->data);
  uv_check_stop(c);
  self->flush();
}

void SharedUpstream::flush() {
  if (!connected_ || writing_now_ || failed_ || out_.empty()) return;
  if (role_due_ && !role_refused_) {
    out_.append(kRole);
    routes_.push_back(Route{nullptr, 1, RouteKind::role});
    ++roles_pending_;
    ++in_flight_;
    ++roles_sent_;
  } else if (!routes_.empty() && routes_.back().kind != RouteKind::role) {
    routes_.back().batch_end = true;  // no ROLE behind these: route their replies as they come
  }
  role_due_ = false;
  auto* st = reinterpret_cast<uv_stream_t*>(&tcp_);
  uv_buf_t b = uv_buf_init(const_cast<char*>(out_.data()), static_cast<unsigned>(out_.size()));
  int n = uv_try_write(st, &b, 1);
  if (n > 0) out_.consume(static_cast<size_t>(n));
  else if (n < 0 && n != UV_EAGAIN) return fail(std::string("write to the upstream failed: ") + uv_strerror(n));
  if (!out_.empty()) {
    writing_.swap(out_);
    writing_now_ = true;
    b = uv_buf_init(const_cast<char*>(writing_.data()), static_cast<unsigned>(writing_.size()));
    uv_write(&write_req_, st, &b, 1, &SharedUpstream::on_written);
    return;
  }
  maybe_writable();
}

void SharedUpstream::maybe_writable() {
  if (!was_full_ || queued_bytes() >= bound() / 2) return;
  was_full_ = false;
  std::vector<SharedClient*> all = attached_;
  for (SharedClient* c : all)
    if (c->shared_conn_ == this) c->on_shared_writable();
}

void SharedUpstream::on_written(uv_write_t* req, int status) {
  auto* self = static_cast<SharedUpstream*>(req->data);
  self->writing_now_ = false;
  self->writing_.clear();
  if (self->failed_) return;
  if (status < 0) return self->fail(std::string("write to the upstream failed: ") + uv_strerror(status));
  if (self->out_.empty()) return self->maybe_writable();
  self->flush();
}

void SharedUpstream::alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* self = static_cast<SharedUpstream*>(h->data);
  alloc_read_buffer(self->ctx_, &self->in_, buf);
}

void SharedUpstream::on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* self = static_cast<SharedUpstream*>(s->data);
  const bool shared_buf = buf->base == self->ctx_->read_buf;
  if (n <= 0) {
    if (shared_buf) self->ctx_->read_buf_busy = false;
    if (n == 0 || self->failed_) return;
    return self->fail(n == UV_EOF ? "upstream closed the connection" : uv_strerror(static_cast<int>(n)));
  }
  if (self->failed_) {
    if (shared_buf) self->ctx_->read_buf_busy = false;
    return;
  }
  if (shared_buf) {
    self->route(std::string_view(buf->base, static_cast<size_t>(n)), nullptr);
    self->ctx_->read_buf_busy = false;
  } else {
    self->in_.commit(static_cast<size_t>(n));
    self->route(self->in_.view(), &self->in_);
  }
  // Each client that got replies releases and flushes once per read.
  std::vector<SharedClient*> touched;
  touched.swap(self->touched_);
  for (SharedClient* c : touched) {
    if (c == nullptr) continue;
    c->shared_touched_ = false;
    c->on_shared_read_done();
  }
  if (self->touched_.empty()) self->touched_.swap(touched);  // keep the capacity
  self->touched_.clear();
}

bool SharedUpstream::offsets_trusted() const {
  return ctx_->gate && ctx_->serving && ctx_->offsets_follow_log && !ctx_->log_failed && !run_id_.empty() &&
         run_id_ == ctx_->upstream_run_id;
}

void SharedUpstream::route(std::string_view input, ByteBuffer* owner) {
  routing_ = true;
  route_input(input, owner);
  routing_ = false;
}

void SharedUpstream::route_input(std::string_view input, ByteBuffer* owner) {
  // Frame what is complete (framed_ keeps frames from an earlier read that
  // wait for their ROLE answer; the framer resumes at framed_end_).
  size_t end = framed_end_;
  while (end < input.size()) {
    resp::Frame f;
    resp::FrameStatus st = framer_.next(input.substr(end), &f);
    if (st == resp::FrameStatus::incomplete) break;
    if (st == resp::FrameStatus::error) {
      LOG_ERROR("shared", "shared connection %u: upstream %s sent an unreadable reply: %s", index_,
                ctx_->upstream_name.c_str(), framer_.error().c_str());
      return fail("upstream sent an unreadable reply");
    }
    framed_.push_back(Framed{end, f});
    end += f.length;
  }
  size_t k = 0;  // framed_[0, k) routed
  while (k < framed_.size()) {
    // Where framed_[k]'s batch ends: at a ROLE route (its answer covers
    // them), or at a route that ended a write without a ROLE.
    enum class Stop { role, batch_end, more } stop = Stop::more;
    size_t j = k;
    size_t first_wanting = SIZE_MAX;  // the first reply that waits for the ROLE's offset
    auto it = routes_.begin();
    uint32_t left = it == routes_.end() ? 0 : it->count;
    for (; it != routes_.end(); ++j) {
      if (it->wants_offset && first_wanting == SIZE_MAX) first_wanting = j;
      if (it->kind == RouteKind::role) {
        stop = Stop::role;
        break;
      }
      if (left == 1 && it->batch_end) {
        ++j;
        stop = Stop::batch_end;
        break;
      }
      if (--left == 0 && ++it != routes_.end()) left = it->count;
    }
    // j counts routes, not frames: past the frames we have, the batch's
    // other replies are still to come.
    if (routes_.empty()) {
      LOG_ERROR("shared", "shared connection %u: upstream %s sent a reply no command asked for", index_,
                ctx_->upstream_name.c_str());
      return fail("upstream sent a reply no command asked for");
    }
    uint64_t offset = 0;
    if (stop == Stop::role && j < framed_.size()) {
      const Framed& r = framed_[j];
      std::string_view frame = input.substr(r.pos, r.f.length);
      if (!role_offset(frame, r.f, &offset)) {
        // No offset: these replies are covered by probes.  Refused by ACL
        // (the default user may lack ROLE): no more ROLEs on this
        // connection.  Anything else (-BUSY while a script runs too long)
        // may pass: ROLE goes on.
        offset = 0;
        std::string_view text;
        if (!resp::frame_scalar(frame.substr(r.f.attr_length), &text)) text = frame.substr(0, 40);
        if (r.f.is_error() && text.substr(0, 6) == "NOPERM") role_refused_ = true;
        if (!role_warned_ || role_refused_) {
          LOG_WARN("shared", "shared connection %u to %s: ROLE got %.*s; replies on it wait for control-link probes%s",
                   index_, ctx_->upstream_name.c_str(), static_cast<int>(std::min<size_t>(text.size(), 200)),
                   text.data(), role_refused_ ? "" : " while it does");
          role_warned_ = true;
        }
      }
      if (!offsets_trusted()) offset = 0;  // 0: no offset known
    } else if (stop == Stop::role && input.size() - framed_[k].pos < kOffsetWaitBytes) {
      // Their ROLE answer is on its way: the replies before the first one
      // that needs its offset (reads, mostly) go now, the rest with it.
      const size_t now = std::min(first_wanting, framed_.size());
      if (now > k) {
        if (!deliver(input, k, now, 0)) return;
        k = now;
      }
      break;
    }
    const size_t to = std::min(j, framed_.size());
    if (!deliver(input, k, to, offset)) return;
    k = to;
    if (stop == Stop::role && j < framed_.size()) {  // the ROLE answer itself
      routes_.pop_front();
      --roles_pending_;
      --in_flight_;
      ++k;
    }
  }
  // Consume what was routed; keep the rest (framed or not) for the next read.
  const size_t consumed = k < framed_.size() ? framed_[k].pos : end;
  framed_.erase(framed_.begin(), framed_.begin() + static_cast<std::ptrdiff_t>(k));
  for (Framed& r : framed_) r.pos -= consumed;
  framed_end_ = end - consumed;
  if (owner) owner->consume(consumed);
  else if (consumed < input.size()) in_.append(input.substr(consumed));
}

bool SharedUpstream::deliver(std::string_view input, size_t from, size_t to, uint64_t offset) {
  for (size_t i = from; i < to; ++i) {
    if (routes_.empty()) {
      LOG_ERROR("shared", "shared connection %u: upstream %s sent a reply no command asked for", index_,
                ctx_->upstream_name.c_str());
      fail("upstream sent a reply no command asked for");
      return false;
    }
    std::string_view frame = input.substr(framed_[i].pos, framed_[i].f.length);
    Route& r = routes_.front();
    SharedClient* c = r.client;
    const RouteKind kind = r.kind;
    if (--r.count == 0) routes_.pop_front();
    --in_flight_;
    if (kind == RouteKind::role) {  // a ROLE answer routed without its batch (route() never does this)
      --roles_pending_;
      continue;
    }
    if (kind == RouteKind::run_id) {
      run_id_ = info_run_id(frame, framed_[i].f);
      continue;
    }
    if (c == nullptr) continue;
    if (!c->shared_touched_) {
      c->shared_touched_ = true;
      touched_.push_back(c);
    }
    if (offset) ++replies_with_offset_;
    c->on_shared_reply(frame, framed_[i].f, offset);
    if (failed_) return false;
  }
  return true;
}

void SharedUpstream::fail(const std::string& why) {
  if (failed_) return;
  failed_ = true;
  LOG_WARN("shared", "shared connection %u to %s: %s (%zu clients attached)", index_, ctx_->upstream_name.c_str(),
           why.c_str(), attached_.size());
  if (ctx_->shared_pool) ctx_->shared_pool->forget(this);
  std::vector<SharedClient*> all;
  all.swap(attached_);
  for (SharedClient* c : all) {
    c->shared_conn_ = nullptr;
    c->shared_touched_ = false;
  }
  // Replies that came and wait for their ROLE answer (which will not come
  // now) go to their clients first, without an offset: the client gets
  // what its commands did before it is told the connection is gone.
  // (Not while routing: framed_ may then point into the shared read
  // buffer, and the stream is unreadable anyway.)
  if (!routing_) {
    std::string_view input = in_.view();
    for (const Framed& r : framed_) {
      if (routes_.empty()) break;
      Route& rt = routes_.front();
      SharedClient* c = rt.kind == RouteKind::client ? rt.client : nullptr;
      if (--rt.count == 0) routes_.pop_front();
      if (c && r.pos + r.f.length <= input.size())
        c->on_shared_reply(input.substr(r.pos, r.f.length), r.f, 0);
    }
  }
  routes_.clear();
  framed_.clear();
  framed_end_ = 0;
  roles_pending_ = 0;
  touched_.clear();
  in_flight_ = 0;
  out_.clear();
  for (SharedClient* c : all) c->on_shared_gone(why);
  auto closed = [](uv_handle_t* h) {
    auto* self = static_cast<SharedUpstream*>(h->data);
    if (--self->open_handles_ == 0) delete self;
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&check_), closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), closed);
}

// ---------------------------------------------------------------- pool

namespace {
constexpr uint64_t kProbeIntervalMs = 1000;
constexpr const char kProbeRequest[] =
    "*1\r\n$4\r\nPING\r\n"
    "*4\r\n$6\r\nCLIENT\r\n$7\r\nSETINFO\r\n$8\r\nLIB-NAME\r\n$20\r\ndurable-proxy-probes\r\n"
    "*2\r\n$4\r\nINFO\r\n$7\r\ncluster\r\n"
    "*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$19\r\ndurable-proxy-probe\r\n";  // for CLIENT LIST
}  // namespace

// One probe connection: connect, send kProbeRequest, read its four
// replies (or an error), report, close.
struct SharedPool::Probe {
  SharedPool* pool;  // nullptr once the pool closed
  uv_tcp_t tcp{};
  uv_connect_t connect_req{};
  uv_write_t write_req{};
  ByteBuffer in;
  resp::ReplyFramer framer{1u << 20};
  std::vector<std::string> replies;
  bool done = false;

  explicit Probe(SharedPool* p) : pool(p) {
    tcp.data = this;
    connect_req.data = this;
    write_req.data = this;
  }
  void finish(bool answered) {
    if (done) return;
    done = true;
    if (pool) {
      const bool pong = replies.size() >= 1 && replies[0] == "+PONG";
      const bool setinfo = replies.size() >= 2 && replies[1] == "+OK";
      const bool cluster = replies.size() < 3 || replies[2].find("cluster_enabled:0") == std::string::npos;
      SharedPool* p = pool;
      pool = nullptr;
      p->probe_ = nullptr;
      p->probe_done(answered, pong, setinfo, cluster);
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp), [](uv_handle_t* h) { delete static_cast<Probe*>(h->data); });
  }
};

SharedPool::SharedPool(ProxyContext* ctx, uint32_t size) : ctx_(ctx), slots_(size, nullptr) {
  timer_ = new uv_timer_t;
  uv_timer_init(ctx_->loop, timer_);
  timer_->data = this;
  uv_timer_start(timer_, &SharedPool::on_probe_timer, 0, kProbeIntervalMs);
}

SharedPool::~SharedPool() = default;  // close_all() ran: each connection frees itself

void SharedPool::on_probe_timer(uv_timer_t* t) {
  auto* self = static_cast<SharedPool*>(t->data);
  if (self->probe_ == nullptr && !self->closed_) self->start_probe();
}

void SharedPool::start_probe() {
  auto* pr = new Probe(this);
  probe_ = pr;
  uv_tcp_init(ctx_->loop, &pr->tcp);
  int rc = uv_tcp_connect(&pr->connect_req, &pr->tcp, reinterpret_cast<const sockaddr*>(&ctx_->upstream_addr),
                          [](uv_connect_t* req, int status) {
                            auto* pr = static_cast<Probe*>(req->data);
                            if (status != 0 || pr->pool == nullptr) return pr->finish(false);
                            uv_buf_t b = uv_buf_init(const_cast<char*>(kProbeRequest), sizeof kProbeRequest - 1);
                            auto* st = reinterpret_cast<uv_stream_t*>(&pr->tcp);
                            uv_write(&pr->write_req, st, &b, 1, [](uv_write_t* w, int st2) {
                              if (st2 < 0) static_cast<Probe*>(w->data)->finish(false);
                            });
                            uv_read_start(
                                st,
                                [](uv_handle_t* h, size_t, uv_buf_t* buf) {
                                  auto* p = static_cast<Probe*>(h->data);
                                  char* room = p->in.prepare(16 * 1024);
                                  *buf = uv_buf_init(room, static_cast<unsigned>(p->in.writable()));
                                },
                                [](uv_stream_t* s, ssize_t n, const uv_buf_t*) {
                                  auto* p = static_cast<Probe*>(s->data);
                                  if (p->done) return;
                                  if (n < 0) return p->finish(false);
                                  p->in.commit(static_cast<size_t>(n));
                                  for (;;) {
                                    std::string_view rest = p->in.view();
                                    resp::Frame f;
                                    resp::FrameStatus fs = p->framer.next(rest, &f);
                                    if (fs == resp::FrameStatus::error) return p->finish(false);
                                    if (fs == resp::FrameStatus::incomplete) break;
                                    p->replies.emplace_back(rest.substr(0, std::min<size_t>(f.length, 4096)));
                                    while (!p->replies.back().empty() &&
                                           (p->replies.back().back() == '\n' || p->replies.back().back() == '\r'))
                                      p->replies.back().pop_back();
                                    p->in.consume(f.length);
                                    if (p->replies.size() == 4) return p->finish(true);
                                  }
                                });
                          });
  if (rc != 0) pr->finish(false);
}

void SharedPool::probe_done(bool answered, bool auth_free, bool setinfo_ok, bool cluster) {
  if (!answered || closed_) return;  // the upstream is down or busy: nothing learned
  const bool was = usable_;
  usable_ = auth_free;
  setinfo_ok_ = setinfo_ok;
  cluster_ = cluster;
  if (was && !usable_) {
    LOG_WARN("shared", "new upstream connections now need authentication: shared connections close, "
                       "clients use their own");
    std::vector<SharedUpstream*> all = slots_;
    for (SharedUpstream* c : all)
      if (c) c->close("new upstream connections need authentication");
  } else if (!was && usable_) {
    LOG_INFO("shared", "upstream.sharing: new connections need no AUTH; clients share %zu upstream connections",
             slots_.size());
  }
}

SharedUpstream* SharedPool::pick() {
  if (closed_ || slots_.empty() || !usable_) return nullptr;
  const uint32_t i = next_++ % static_cast<uint32_t>(slots_.size());
  if (slots_[i] == nullptr) {
    auto* c = new SharedUpstream(ctx_, i);
    if (c->failed()) return nullptr;  // could not even start connecting (it frees itself)
    slots_[i] = c;
  }
  return slots_[i];
}

void SharedPool::forget(SharedUpstream* c) {
  for (SharedUpstream*& s : slots_)
    if (s == c) s = nullptr;
}

void SharedPool::close_all(const std::string& why) {
  closed_ = true;
  if (probe_) {
    probe_->pool = nullptr;
    probe_->finish(false);
    probe_ = nullptr;
  }
  if (timer_) {
    uv_close(reinterpret_cast<uv_handle_t*>(timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    timer_ = nullptr;
  }
  std::vector<SharedUpstream*> all = slots_;
  for (SharedUpstream* c : all)
    if (c) c->close(why);
}

size_t SharedPool::connections() const {
  size_t n = 0;
  for (SharedUpstream* s : slots_) n += s != nullptr;
  return n;
}

}  // namespace dp
