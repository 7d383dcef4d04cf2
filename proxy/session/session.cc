#include "proxy/session/session.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>
#include <utility>

#include "proxy/base/ascii.h"
#include "proxy/commands/history_guard.h"
#include "proxy/commands/monitor_line.h"
#include "proxy/base/logger.h"
#include "proxy/resp/encoder.h"
#include "proxy/session/session_metrics.h"

namespace dp {

using commands::Kind;
using commands::Special;
using commands::iequals;

namespace {

constexpr size_t kReadChunk = 64 * 1024;
constexpr size_t kMaxExpects = 1 << 20;  // pipeline depth bound per client
constexpr uint64_t kUnreachableWaitMs = 1000;

bool parse_int(std::string_view s, long long* out) {
  if (s.empty()) return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

// A db index as the server reads it (string2ll and an int range): an
// optional '-', digits, no leading zero, no '+', no spaces, no "-0".
// kDbUnknown when it is not one or not a db the proxy can track; the db
// itself is taken only from the server's +OK.
int parse_db_index(std::string_view s) {
  constexpr int kUnknown = -1;
  if (s.empty() || s.size() > 10) return kUnknown;
  if (s[0] == '-') return kUnknown;  // negative (or "-0"): never a db
  if (s.size() > 1 && s[0] == '0') return kUnknown;
  long long v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return kUnknown;
    v = v * 10 + (c - '0');
  }
  return v < gate::PendingKeys::kMaxDb ? static_cast<int>(v) : kUnknown;
}

bool is_pubsub_confirmation(std::string_view kind) {
  return iequals(kind, "subscribe") || iequals(kind, "psubscribe") || iequals(kind, "ssubscribe") ||
         iequals(kind, "unsubscribe") || iequals(kind, "punsubscribe") || iequals(kind, "sunsubscribe");
}

// The confirmation `kind` answers a command of `special`.
bool confirms(Special special, std::string_view kind) {
  switch (special) {
    case Special::subscribe: return iequals(kind, "subscribe");
    case Special::psubscribe: return iequals(kind, "psubscribe");
    case Special::ssubscribe: return iequals(kind, "ssubscribe");
    case Special::unsubscribe: return iequals(kind, "unsubscribe");
    case Special::punsubscribe: return iequals(kind, "punsubscribe");
    case Special::sunsubscribe: return iequals(kind, "sunsubscribe");
    default: return false;
  }
}

bool is_pubsub_message(std::string_view kind) {
  return iequals(kind, "message") || iequals(kind, "pmessage") || iequals(kind, "smessage");
}

bool is_pubsub_special(Special s) {
  return s == Special::subscribe || s == Special::psubscribe || s == Special::ssubscribe ||
         s == Special::unsubscribe || s == Special::punsubscribe || s == Special::sunsubscribe;
}

// MONITOR lines: "+1700000000.123456 [0 127.0.0.1:5000] ..."
// A blocking command that waits without a deadline (BLPOP ... 0, XREAD
// BLOCK 0, WAIT n 0): no reply is due until another client acts.  The
// timeout is the last argument, but BLMPOP/BZMPOP's comes first and
// XREAD[GROUP]'s follows BLOCK.
bool blocks_forever(const commands::Classification& cls, const std::vector<std::string_view>& args) {
  if (!cls.blocking || args.size() < 2) return false;
  std::string_view timeout = args.back();
  if (iequals(args[0], "blmpop") || iequals(args[0], "bzmpop")) {
    timeout = args[1];
  } else if (iequals(args[0], "xread") || iequals(args[0], "xreadgroup")) {
    timeout = {};
    for (size_t i = 1; i + 1 < args.size(); i++)
      if (iequals(args[i], "block")) timeout = args[i + 1];
  }
  if (timeout.empty()) return false;
  std::string t(timeout);
  char* end = nullptr;
  double v = std::strtod(t.c_str(), &end);
  return end != t.c_str() && *end == '\0' && v == 0;
}

bool looks_like_monitor_line(std::string_view frame) {
  if (frame.size() < 4 || frame[0] != '+') return false;
  size_t i = 1;
  while (i < frame.size() && frame[i] >= '0' && frame[i] <= '9') ++i;
  return i > 1 && i < frame.size() && frame[i] == '.' && frame.find(" [", i) != std::string_view::npos;
}

}  // namespace

Session::Session(ProxyContext* ctx, uint64_t id)
    : ctx_(ctx), id_(id), parser_(ctx->limits), framer_(ctx->limits.max_bulk_len + 1024) {
  client_.data = this;
  upstream_.data = this;
  connect_req_.data = this;
  client_write_.data = this;
  upstream_write_.data = this;
  shutdown_req_.data = this;
}

Session::~Session() = default;

bool Session::accept(uv_stream_t* server) {
  uv_tcp_init(ctx_->loop, &client_);
  ++open_handles_;
  if (int rc = uv_accept(server, reinterpret_cast<uv_stream_t*>(&client_)); rc != 0) {
    LOG_WARN("session", "accept failed: %s", uv_strerror(rc));
    close("accept failed");
    return false;
  }
  uv_tcp_nodelay(&client_, 1);
  uv_tcp_init(ctx_->loop, &upstream_);
  ++open_handles_;
  int rc = uv_tcp_connect(&connect_req_, &upstream_, reinterpret_cast<const sockaddr*>(&ctx_->upstream_addr),
                          &Session::on_connect);
  if (rc != 0) {
    upstream_unreachable(uv_strerror(rc));
    return true;
  }
  connecting_ = true;
  update_reading();
  return true;
}

// ---------------------------------------------------------------- upstream connect

void Session::on_connect(uv_connect_t* req, int status) {
  auto* self = static_cast<Session*>(req->data);
  self->connecting_ = false;
  if (self->closing_) return;
  if (status != 0) return self->upstream_unreachable(uv_strerror(status));
  self->connected_ = true;
  uv_tcp_nodelay(&self->upstream_, 1);
  if (self->client_gone_) return self->start_swallow();
  self->flush_upstream();
  self->update_reading();
}

void Session::upstream_unreachable(const char* cause) {
  // Nothing was forwarded: forget what the client sent and tell it why.
  for (gate::Token& t : tokens_)
    if (ctx_->gate) ctx_->gate->pending().abandon(std::move(t));
  tokens_.clear();
  if (ctx_->gate && !multi_token_.empty()) ctx_->gate->pending().abandon(std::move(multi_token_));
  expects_.clear();
  exec_selects_.clear();
  local_.clear();
  read_keys_.clear();
  up_out_.clear();
  upstream_closed_ = true;
  std::string msg = "ERR durable-proxy: upstream " + ctx_->upstream_name + " unreachable: " + cause;
  LOG_WARN("session", "client %llu: %s", static_cast<unsigned long long>(id_), msg.c_str());
  unreachable_error_ = std::move(msg);
  if (client_gone_) return close("client left before the upstream connection failed");
  if (client_spoke_) return send_unreachable_error();
  unreachable_timer_ = new uv_timer_t;
  uv_timer_init(ctx_->loop, unreachable_timer_);
  unreachable_timer_->data = this;
  ++open_handles_;
  uv_timer_start(unreachable_timer_, &Session::on_unreachable_timer, kUnreachableWaitMs, 0);
  update_reading();  // keeps reading the client: its first bytes trigger the error
}

void Session::on_unreachable_timer(uv_timer_t* t) {
  auto* self = static_cast<Session*>(t->data);
  if (!self->closing_) self->send_unreachable_error();
}

void Session::send_unreachable_error() {
  if (unreachable_error_.empty()) return;
  std::string line;
  resp::append_error(&line, unreachable_error_);
  unreachable_error_.clear();
  if (unreachable_timer_) uv_timer_stop(unreachable_timer_);
  queue_reply(line, false, nullptr, true);
  release();
  update_reading();
}

// ---------------------------------------------------------------- reading

void Session::alloc_client(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* self = static_cast<Session*>(h->data);
  ProxyContext* ctx = self->ctx_;
  if (self->in_.empty() && !ctx->read_buf_busy) {
    ctx->read_buf_busy = true;
    *buf = uv_buf_init(ctx->read_buf, static_cast<unsigned>(ctx->read_buf_size));
    return;
  }
  char* room = self->in_.prepare(kReadChunk);  // before writable(): argument order is unspecified
  *buf = uv_buf_init(room, static_cast<unsigned>(self->in_.writable()));
}

void Session::alloc_upstream(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* self = static_cast<Session*>(h->data);
  ProxyContext* ctx = self->ctx_;
  if (self->up_in_.empty() && !ctx->read_buf_busy) {
    ctx->read_buf_busy = true;
    *buf = uv_buf_init(ctx->read_buf, static_cast<unsigned>(ctx->read_buf_size));
    return;
  }
  char* room = self->up_in_.prepare(kReadChunk);  // before writable(): argument order is unspecified
  *buf = uv_buf_init(room, static_cast<unsigned>(self->up_in_.writable()));
}

void Session::on_client_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* self = static_cast<Session*>(s->data);
  bool shared = buf->base == self->ctx_->read_buf;
  if (n > 0) self->client_spoke_ = true;
  if (n > 0 && !self->unreachable_error_.empty()) {  // answer the first request with the error
    if (shared) self->ctx_->read_buf_busy = false;
    return self->send_unreachable_error();
  }
  if (n <= 0) {
    if (shared) self->ctx_->read_buf_busy = false;
    if (n == 0) return;
    self->client_left(n == UV_EOF ? "client closed the connection" : uv_strerror(static_cast<int>(n)));
    return;
  }
  if (shared) {
    self->process_requests(std::string_view(buf->base, static_cast<size_t>(n)), nullptr);
    self->ctx_->read_buf_busy = false;
  } else {
    self->in_.commit(static_cast<size_t>(n));
    self->process_requests(self->in_.view(), &self->in_);
  }
  self->after_io();
}

void Session::on_upstream_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* self = static_cast<Session*>(s->data);
  bool shared = buf->base == self->ctx_->read_buf;
  if (n <= 0) {
    if (shared) self->ctx_->read_buf_busy = false;
    if (n == 0) return;
    self->upstream_gone(n == UV_EOF ? "upstream closed the connection" : uv_strerror(static_cast<int>(n)));
    return;
  }
  if (shared) {
    self->process_replies(std::string_view(buf->base, static_cast<size_t>(n)), nullptr);
    self->ctx_->read_buf_busy = false;
  } else {
    self->up_in_.commit(static_cast<size_t>(n));
    self->process_replies(self->up_in_.view(), &self->up_in_);
  }
  self->after_io();
}

void Session::after_io() {
  if (closing_) return;
  flush_upstream();
  release();
  update_reading();
}

void Session::update_reading() {
  if (closing_) return;
  const uint64_t limit = ctx_->cfg->client_buffer_bytes;
  bool global_full = ctx_->total_held_bytes >= ctx_->cfg->total_held_bytes;
  // While the log lags (ctx_->stream_lagging), a session that has a write in
  // flight or a reply held reads no more requests: the stream stops growing
  // by more than one read per session, and sessions that only read go on.
  bool lag_stop = ctx_->stream_lagging && (!tokens_.empty() || !held_.empty() || !multi_token_.empty());
  bool want_client = !client_gone_ && !draining_ && !stop_requests_ &&
                     (!upstream_closed_ || !unreachable_error_.empty()) && !lag_stop &&
                     up_out_.size() + up_writing_.size() < limit && held_bytes_ < limit &&
                     out_.size() + writing_.size() < limit && expects_.size() < kMaxExpects && !global_full;
  if (global_full && !paused_global_ && want_client == false && !client_gone_) paused_global_ = true;
  if (want_client != reading_client_) {
    if (!want_client && (global_full || lag_stop || held_bytes_ >= limit))
      count_error(ctx_->metrics, admin::ErrorCause::backpressure);  // paused for memory
    reading_client_ = want_client;
    auto* st = reinterpret_cast<uv_stream_t*>(&client_);
    if (want_client) uv_read_start(st, &Session::alloc_client, &Session::on_client_read);
    else uv_read_stop(st);
  }
  // Replies are read only while they fit in this client's and in the total
  // held-reply bounds (a client that left: always, its replies are dropped).
  bool want_upstream = connected_ && !upstream_closed_ &&
                       (client_gone_ || (out_.size() + writing_.size() < limit && held_bytes_ < limit &&
                                         !global_full));
  if (want_upstream != reading_upstream_) {
    reading_upstream_ = want_upstream;
    auto* st = reinterpret_cast<uv_stream_t*>(&upstream_);
    if (want_upstream) uv_read_start(st, &Session::alloc_upstream, &Session::on_upstream_read);
    else uv_read_stop(st);
  }
}

void Session::maybe_resume() {
  paused_global_ = false;
  update_reading();
}

// ---------------------------------------------------------------- requests

void Session::process_requests(std::string_view input, ByteBuffer* owner) {
  size_t pos = 0;
  if (raw_client_) {
    forward(input);
    pos = input.size();
  }
  while (pos < input.size() && !stop_requests_ && !closing_) {
    std::string_view rest = input.substr(pos);
    resp::ParseStatus st = parser_.parse(rest, &req_);
    if (st == resp::ParseStatus::incomplete) break;
    if (st == resp::ParseStatus::error) {
      protocol_error(parser_.error());
      pos = input.size();
      break;
    }
    std::string_view bytes = rest.substr(0, req_.consumed);
    pos += req_.consumed;
    if (st == resp::ParseStatus::skip) continue;
    const size_t forwarded_before = up_out_.size();
    handle_request(bytes);
    count_command(ctx_->metrics, up_out_.size() != forwarded_before, cls_.kind);
    if (raw_client_) {  // SYNC/PSYNC: everything after it is the replica's stream
      forward(input.substr(pos));
      pos = input.size();
    }
  }
  if (owner) {
    owner->consume(pos);
  } else if (pos < input.size()) {
    in_.append(input.substr(pos));
  }
}

void Session::protocol_error(const std::string& text) {
  // Valkey sends the replies already due, then the error, then closes.
  stop_requests_ = true;
  count_error(ctx_->metrics, admin::ErrorCause::client_protocol);
  std::string line;
  resp::append_error(&line, text);
  LOG_DEBUG("session", "client %llu: protocol error: %s", static_cast<unsigned long long>(id_), text.c_str());
  answer_locally(line, /*close_after=*/true);
}

void Session::answer_locally(std::string_view reply, bool close_after, bool wait) {
  Expect e;
  e.type = ExpectType::local;
  e.kind = Kind::other;
  e.close_after = close_after;
  e.local_probe = wait;
  e.local_len = static_cast<uint32_t>(reply.size());
  local_.append(reply);
  expects_.push_back(e);
  take_local_expects();
}

void Session::forward(std::string_view bytes) {
  up_out_.append(bytes);
}

void Session::handle_request(std::string_view bytes) {
  const auto& args = req_.args;
  if (args.empty()) return;
  if (!ctx_->serving) {
    std::string line;
    resp::append_error(&line, ctx_->not_serving);
    return answer_locally(line);
  }
  ctx_->table->classify(args, &cls_);
  const bool durable = ctx_->gate != nullptr;
  // Servers before 7.2 do not know WAITAOF; the proxy answers it from its
  // log all the same (below), so recognise it by name.
  if (cls_.info == nullptr && iequals(args[0], "waitaof")) cls_.special = Special::waitaof;

  if (durable) {
    if (std::string why = commands::history_refusal(args); !why.empty()) return refuse_history_change(why);
  }

  Expect e;
  e.kind = cls_.kind;
  e.special = cls_.special;
  e.db = db_;
  e.blocks_forever = blocks_forever(cls_, args);

  switch (cls_.special) {
    case Special::client_reply:
      // Valkey 9 refuses it in MULTI (and aborts the transaction); Redis 7.0
      // and Valkey 8.0/8.1 queue it and change the reply mode in the middle
      // of EXEC's reply.  The proxy keeps the mode itself, so it refuses it
      // as Valkey 9 does, on every server (README: visible differences).
      if (in_multi_) return refuse_queued("ERR Command 'client|reply' not allowed inside a transaction");
      if (args.size() == 3) {
        if (iequals(args[2], "on")) {
          reply_mode_ = ReplyMode::on;
          return answer_locally("+OK\r\n");
        }
        if (iequals(args[2], "off")) {
          reply_mode_ = ReplyMode::off;
          return;
        }
        if (iequals(args[2], "skip")) {
          if (reply_mode_ == ReplyMode::on) reply_mode_ = ReplyMode::skip_next;
          return;
        }
      }
      break;  // let the upstream produce its error
    case Special::info:
      if (args.size() == 2 && iequals(args[1], "durability") && !in_multi_) {  // queued: Valkey's (empty) answer
        std::string body = ctx_->info_durability ? ctx_->info_durability() : std::string();
        std::string reply;
        resp::append_verbatim_or_bulk(&reply, body, resp_);
        if (reply_mode_ != ReplyMode::on) return consume_skip();
        return answer_locally(reply);
      }
      break;
    case Special::waitaof:
      if (durable && args.size() == 4 && args[2] == "0") {
        long long numlocal = 0;
        if (parse_int(args[1], &numlocal) && (numlocal == 0 || numlocal == 1) && !in_multi_) {
          // The proxy's log is this server's local AOF: the answer waits
          // like a write, so every earlier write is durable when it leaves.
          if (reply_mode_ != ReplyMode::on) return consume_skip();
          return answer_locally("*2\r\n:1\r\n:0\r\n", false, /*wait=*/true);
        }
      }
      break;
    case Special::replconf: {
      // The server sends no reply at all to REPLCONF ACK / GETACK from a
      // connection that is not its replica (it returns before answering),
      // and queued in MULTI it leaves EXEC's array one reply short.  Only a
      // well-formed request (an odd argc) reaches that option; from the
      // first pair it is certain, after others it depends on their values.
      size_t at = 0;
      for (size_t j = 1; args.size() % 2 == 1 && j + 1 < args.size(); j += 2)
        if (iequals(args[j], "ack") || iequals(args[j], "getack")) {
          at = j;
          break;
        }
      if (at == 0) break;
      if (in_multi_) return refuse_queued("ERR durable-proxy: REPLCONF ACK/GETACK is not allowed inside a transaction");
      if (at > 1) return refuse_queued("ERR durable-proxy: REPLCONF ACK/GETACK only as the first option");
      return consume_skip();  // as the server: nothing happens, nothing is answered
    }
    case Special::sync:
    case Special::psync:
      // Not allowed inside a transaction (the server refuses it and aborts
      // EXEC); refused here so the session never turns into a raw pipe in
      // the middle of one, nor after a MULTI the server refused.
      if (in_multi_)
        return refuse_queued("ERR durable-proxy: " + std::string(args[0]) + " is not allowed inside a transaction");
      if (durable && !ctx_->cfg->allow_replica_sync) {
        // The pipe would stream the upstream's writes before they are durable.
        std::string line;
        resp::append_error(&line, "ERR durable-proxy: " + std::string(args[0]) +
                                      " refused: a replica through the proxy would receive writes before they "
                                      "are durable (set durability.allow_replica_sync: true to allow it)");
        if (reply_mode_ != ReplyMode::on) return consume_skip();
        return answer_locally(line);
      }
      raw_client_ = true;
      e.type = ExpectType::raw_switch;
      e.kind = Kind::other;
      forward(bytes);
      expects_.push_back(e);
      return take_local_expects();  // at the front already: the upstream's bytes are raw from now on
    case Special::select:
      e.arg = args.size() == 2 ? parse_db_index(args[1]) : kDbUnknown;
      break;
    case Special::reset:
      // RESET runs at once, even inside MULTI: what follows it is not queued
      // and gets its replies whatever CLIENT REPLY said.
      if (in_multi_ && durable) ctx_->gate->pending().abandon(std::move(multi_token_));
      multi_token_ = gate::Token{};
      end_multi();
      reply_mode_ = ReplyMode::on;
      break;
    case Special::hello: {
      // HELLO runs inside MULTI and switches the protocol with EXEC's reply,
      // where the proxy cannot line it up when pub/sub confirmations are in
      // it; the protocol decides what a message is, so refuse it there (as
      // CLIENT REPLY).  Without a version it changes no protocol.
      if (in_multi_ && args.size() > 1)
        return refuse_queued("ERR durable-proxy: HELLO with a protocol version is not allowed inside a transaction");
      long long v = 0;
      if (args.size() > 1 && parse_int(args[1], &v)) e.arg = static_cast<int>(v);
      break;
    }
    default:
      break;
  }
  if (is_pubsub_special(cls_.special)) {
    e.type = ExpectType::pubsub;
    e.arg = static_cast<int>(std::min<size_t>(args.size() - 1, INT32_MAX));  // one confirmation each; 0: unknown
  }

  if (ctx_->log_failed && cls_.kind == Kind::write && durable) {
    std::string line;
    resp::append_error(&line, "ERR durable-proxy: write refused, the durable log failed: " + ctx_->log_failure);
    return answer_locally(line);
  }

  const bool queued = in_multi_ && cls_.special != Special::exec && cls_.special != Special::discard &&
                      cls_.special != Special::multi && cls_.special != Special::watch &&
                      cls_.special != Special::reset && cls_.special != Special::quit;
  // Until MULTI's +OK arrives the server may not be in a transaction (MULTI
  // refused): a command sent behind it is held as if it ran at once too.
  const bool surely_queued = queued && multi_answered_;
  if (queued) {
    // Queued: the reply is +QUEUED (reveals nothing); EXEC carries the marks.
    if (durable && cls_.kind == Kind::write) mark_write(&multi_token_);
    if (cls_.special == Special::select) {
      multi_selects_.push_back(MultiSelect{multi_queued_, e.arg});
      db_ = kDbUnknown;  // commands queued after it run in the db it picks
      if (!surely_queued) e.db_change = true;
    }
    e.maybe_queued = !surely_queued;
    if (is_pubsub_special(cls_.special)) multi_pubsub_ = true;
    ++multi_queued_;
  }
  if (surely_queued) {
    e.kind = Kind::other;
    e.special = Special::none;  // its effect, if any, comes with EXEC's reply
    e.type = ExpectType::reply;
  } else if (cls_.special == Special::multi) {
    if (!in_multi_) {
      in_multi_ = true;
      multi_answered_ = false;
      e.arg = static_cast<int>(++multi_serial_);  // this MULTI opened the transaction
    }
    e.kind = Kind::other;
  } else if (cls_.special == Special::exec && in_multi_) {
    e.kind = Kind::write;
    e.exec_pubsub = multi_pubsub_;
    if (!multi_selects_.empty()) {
      e.db_change = true;
      exec_selects_.push_back(std::move(multi_selects_));
    }
    end_multi();
    if (durable) {
      tokens_.push_back(std::move(multi_token_));
      multi_token_ = gate::Token{};
      e.has_token = true;
    }
  } else if (cls_.special == Special::discard && in_multi_) {
    end_multi();
    if (durable) ctx_->gate->pending().abandon(std::move(multi_token_));
    multi_token_ = gate::Token{};
    e.kind = Kind::other;
  } else if (durable && cls_.kind == Kind::write) {
    gate::Token t;
    mark_write(&t);
    tokens_.push_back(std::move(t));
    e.has_token = true;
  } else if (durable && cls_.kind == Kind::read) {
    e.nkeys = static_cast<uint32_t>(cls_.keys.size());
    for (std::string_view k : cls_.keys) {
      uint32_t len = static_cast<uint32_t>(k.size());
      read_keys_.append(std::string_view(reinterpret_cast<const char*>(&len), sizeof len));
      read_keys_.append(k);
    }
  }

  if (!queued && (e.special == Special::select || e.special == Special::reset)) e.db_change = true;
  if (e.db_change) {
    // Until the server answers, the db of what follows is not known.
    ++db_changes_;
    db_ = kDbUnknown;
  }

  if (reply_mode_ == ReplyMode::off) e.drop = true;
  else if (reply_mode_ == ReplyMode::skip_next) {
    e.drop = true;
    reply_mode_ = ReplyMode::on;
  }
  forward(bytes);
  expects_.push_back(e);
}

void Session::end_multi() {
  in_multi_ = false;
  multi_queued_ = 0;
  multi_pubsub_ = false;
  multi_selects_.clear();
  // SELECTs queued in a transaction that will not run change nothing.
  if (db_changes_ == 0) db_ = confirmed_db_;
}

void Session::db_change_answered(int db) {
  confirmed_db_ = db;
  if (db_changes_ > 0 && --db_changes_ == 0 && multi_selects_.empty()) db_ = confirmed_db_;
}

void Session::refuse_history_change(const std::string& why) {
  std::string name(req_.args[0]);
  for (char& c : name) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
  if (req_.args.size() > 1 && (iequals(req_.args[0], "debug") || iequals(req_.args[0], "cluster"))) {
    name += ' ';
    for (char c : req_.args[1]) name += static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
  }
  LOG_INFO("session", "client %llu: %s refused: %s", static_cast<unsigned long long>(id_), name.c_str(), why.c_str());
  refuse_queued("ERR durable-proxy: " + name + " refused: " + why);
}

void Session::refuse_queued(const std::string& error) {
  if (in_multi_) {
    // As a command the server rejects while queueing: the transaction must
    // then fail with EXECABORT.  A command no server knows flags it; its
    // own error is swallowed and ours answers in its place.
    Expect bad;
    bad.kind = Kind::other;
    bad.drop = true;
    bad.db = db_;
    forward("*1\r\n$31\r\ndurable-proxy-refused-in-multi!\r\n");
    expects_.push_back(bad);
  }
  if (reply_mode_ != ReplyMode::on) return consume_skip();
  std::string line;
  resp::append_error(&line, error);
  answer_locally(line);
}

void Session::consume_skip() {
  if (reply_mode_ == ReplyMode::skip_next) reply_mode_ = ReplyMode::on;
}

void Session::mark_write(gate::Token* t) {
  gate::PendingKeys& pk = ctx_->gate->pending();
  if (db_ == kDbUnknown && (!cls_.keys.empty() || cls_.db_wide)) {
    pk.mark_all(t);  // the db it runs in is not known: every db is pending
  } else {
    for (std::string_view k : cls_.keys) pk.mark_key(t, db_, k);
    if (cls_.db_wide) pk.mark_db(t, db_);
  }
  if (cls_.all_dbs) pk.mark_all(t);
  if (cls_.other_db >= 0) pk.mark_db(t, cls_.other_db);
  if (cls_.other_db2 >= 0) pk.mark_db(t, cls_.other_db2);
}

void Session::flush_upstream() {
  if (!connected_ || upstream_writing_ || up_out_.empty() || upstream_closed_ || closing_) return;
  uv_buf_t b = uv_buf_init(const_cast<char*>(up_out_.data()), static_cast<unsigned>(up_out_.size()));
  auto* st = reinterpret_cast<uv_stream_t*>(&upstream_);
  int n = uv_try_write(st, &b, 1);
  if (n > 0) up_out_.consume(static_cast<size_t>(n));
  else if (n < 0 && n != UV_EAGAIN) return upstream_gone(uv_strerror(n));
  if (up_out_.empty()) {  // all written: an idle session keeps no buffer memory
    up_out_.release();
    up_writing_.release();
    return;
  }
  up_writing_.swap(up_out_);
  upstream_writing_ = true;
  b = uv_buf_init(const_cast<char*>(up_writing_.data()), static_cast<unsigned>(up_writing_.size()));
  uv_write(&upstream_write_, st, &b, 1, &Session::on_upstream_written);
}

void Session::on_upstream_written(uv_write_t* req, int status) {
  auto* self = static_cast<Session*>(req->data);
  self->upstream_writing_ = false;
  self->up_writing_.clear();
  if (self->closing_) return;
  if (status < 0) return self->upstream_gone(uv_strerror(status));
  self->flush_upstream();
  self->update_reading();
}

// ---------------------------------------------------------------- replies

void Session::process_replies(std::string_view input, ByteBuffer* owner) {
  size_t pos = 0;
  while (pos < input.size() && !closing_) {
    if (raw_upstream_ || client_gone_) {
      if (!client_gone_) queue_reply(input.substr(pos), false, nullptr);
      pos = input.size();
      break;
    }
    std::string_view rest = input.substr(pos);
    resp::Frame f;
    resp::FrameStatus st = framer_.next(rest, &f);
    if (st == resp::FrameStatus::incomplete) break;
    if (st == resp::FrameStatus::error) {
      LOG_ERROR("session", "client %llu: upstream %s sent an unreadable reply: %s",
                static_cast<unsigned long long>(id_), ctx_->upstream_name.c_str(), framer_.error().c_str());
      upstream_gone("upstream sent an unreadable reply");
      return;
    }
    on_frame(rest.substr(0, f.length), f);
    pos += f.length;
  }
  if (owner) {
    owner->consume(pos);
  } else if (pos < input.size()) {
    up_in_.append(input.substr(pos));
  }
}

void Session::count_subscriptions(const resp::FrameElements& el) {
  // The count in a confirmation is the server's: channels + patterns for
  // (UN)SUBSCRIBE and P(UN)SUBSCRIBE, shard channels for S(UN)SUBSCRIBE; the
  // connection is in subscribed mode while their sum is not zero.
  long long count = 0;
  if (el.items.size() < 3 || el.types[2] != ':' || !parse_int(el.items[2], &count)) return;
  const bool shard = iequals(el.items[0], "ssubscribe") || iequals(el.items[0], "sunsubscribe");
  const bool pattern = iequals(el.items[0], "psubscribe") || iequals(el.items[0], "punsubscribe");
  long long& members = shard ? shard_subscriptions_ : pattern ? pattern_subscriptions_ : channel_subscriptions_;
  confirmation_prior_ = members;
  if (shard) {
    shard_subscriptions_ = count;
  } else {
    members = std::max(0LL, members + (count - subscriptions_));
    subscriptions_ = count;
  }
  subscribed_ = subscriptions_ + shard_subscriptions_ > 0;
}

void Session::count_exec_subscriptions(std::string_view frame, const resp::Frame& f) {
  // EXEC of a transaction with pub/sub commands: their confirmations are
  // elements of EXEC's reply (more of them follow it as frames of their own).
  std::string_view body = frame.substr(f.attr_length);
  size_t eol = body.find("\r\n");
  if (eol == std::string_view::npos) return;
  std::string_view rest = body.substr(eol + 2);
  resp::ReplyFramer framer(ctx_->limits.max_bulk_len + 1024);
  while (!rest.empty()) {
    resp::Frame el;
    if (framer.next(rest, &el) != resp::FrameStatus::ok) return;
    std::string_view one = rest.substr(0, el.length);
    resp::FrameElements items;
    if ((el.type == '*' || el.type == '>') && resp::frame_elements(one.substr(el.attr_length), 3, &items) &&
        items.count == 3 && is_pubsub_confirmation(items.items[0]))
      count_subscriptions(items);
    rest.remove_prefix(el.length);
  }
}

Session::FrameRole Session::frame_role(std::string_view frame, const resp::Frame& f) {
  bool push = f.type == '>';
  bool pubsub_front = !expects_.empty() && expects_.front().type == ExpectType::pubsub;
  // RESP2 subscribed mode: messages and confirmations are plain arrays (and
  // only pub/sub commands, PING, QUIT and RESET run, so no other reply is
  // an array starting with "message" or "subscribe").
  bool resp2_subscribed = subscribed_ && resp_ == 2;
  if (push || (f.type == '*' && (resp2_subscribed || pubsub_front))) {
    resp::FrameElements el;
    if (resp::frame_elements(frame.substr(f.attr_length), 3, &el) && !el.items.empty()) {
      std::string_view kind = el.items[0];
      if (is_pubsub_confirmation(kind) && el.count == 3) {
        count_subscriptions(el);
        confirmation_kind_ = kind;
        return pubsub_front ? FrameRole::confirmation : FrameRole::passive;
      }
      if (push || (resp2_subscribed && is_pubsub_message(kind))) return FrameRole::message;
    } else if (push) {
      return FrameRole::message;
    }
  }
  if (monitor_ && f.type == '+' && looks_like_monitor_line(frame))  // only a write's line is held (class 7)
    return commands::monitor_line_needs_hold(*ctx_->table, frame) ? FrameRole::message : FrameRole::passive;
  return FrameRole::reply;
}

void Session::on_frame(std::string_view frame, const resp::Frame& f) {
  switch (frame_role(frame, f)) {
    case FrameRole::message:  // pub/sub, invalidations, MONITOR: held like writes
      queue_reply(frame, ctx_->gate != nullptr, nullptr, false, true, admin::HoldKind::notification);
      return;
    case FrameRole::passive:
      // A MONITOR line of a non-write waits only for its turn behind held
      // lines; it is a message all the same (nothing due at shutdown).
      queue_reply(frame, false, nullptr, false, monitor_ && f.type == '+');
      return;
    case FrameRole::confirmation:
      // A pub/sub command is complete once it got one confirmation per
      // argument (or, argument-less, once one of another kind arrives).
      while (!expects_.empty() && expects_.front().type == ExpectType::pubsub && expects_.front().confirmations > 0 &&
             ((expects_.front().arg > 0 && expects_.front().confirmations >= static_cast<uint32_t>(expects_.front().arg)) ||
              !confirms(expects_.front().special, confirmation_kind_))) {
        expects_.pop_front();
        take_local_expects();
      }
      // Sent whatever CLIENT REPLY says: the server marks (un)subscribe
      // confirmations, like messages, as pushes that OFF/SKIP do not silence.
      if (!expects_.empty() && expects_.front().type == ExpectType::pubsub) {
        Expect& front = expects_.front();
        // Argument-less: the server answers for every member of that kind
        // it had when it ran, i.e. before this first confirmation.
        if (front.arg == 0 && front.confirmations == 0 && confirms(front.special, confirmation_kind_))
          front.arg = static_cast<int>(std::clamp<long long>(confirmation_prior_, 1, INT32_MAX));
        front.confirmations++;
      }
      queue_reply(frame, false, nullptr);
      return;
    case FrameRole::reply:
      break;
  }
  // A pub/sub command that already got its confirmations is complete once
  // a reply to something else arrives.
  while (!expects_.empty() && expects_.front().type == ExpectType::pubsub && expects_.front().confirmations > 0) {
    expects_.pop_front();
    take_local_expects();
  }
  if (expects_.empty() || (expects_.front().type != ExpectType::reply && expects_.front().type != ExpectType::pubsub)) {
    // Nothing asked for it (or a local reply is due first, which cannot
    // happen: locals are taken as soon as they reach the front).
    LOG_DEBUG("session", "client %llu: unsolicited reply from upstream", static_cast<unsigned long long>(id_));
    queue_reply(frame, ctx_->gate != nullptr, nullptr, false, true, admin::HoldKind::notification);
    return;
  }
  Expect e = expects_.front();
  expects_.pop_front();
  apply_reply_effects(e, frame, f);

  gate::Token token;
  gate::Token* tp = nullptr;
  if (e.has_token) {
    token = std::move(tokens_.front());
    tokens_.pop_front();
    tp = &token;
  }
  bool wait = false;
  if (ctx_->gate) {
    switch (e.kind) {
      case Kind::write:
      case Kind::keyspace_read:
        wait = true;
        break;
      case Kind::read:
        wait = read_needs_wait(e);
        break;
      case Kind::other:
        break;
    }
  }
  if (e.drop) {
    if (wait) queue_reply(std::string_view(), true, tp);  // keeps order and resolves marks
  } else {
    queue_reply(frame, wait, tp, false, false, e.kind == Kind::read ? admin::HoldKind::read : admin::HoldKind::write);
  }
  take_local_expects();
}

bool Session::read_needs_wait(const Expect& e) {
  // Consume this read's keys from read_keys_ whatever the answer.  A read
  // waits only for the writes pending on its keys now: when their offsets
  // are known, for those offsets (read_wait_offset_, used by queue_reply),
  // otherwise for a probe sent after this reply.
  gate::PendingKeys& pk = ctx_->gate->pending();
  const bool check = !pk.empty();
  // A read in a db not known when it was forwarded waits if anything is pending.
  uint64_t need = check && ((e.nkeys == 0 && pk.db_pending(e.db)) || e.db == kDbUnknown)
                      ? gate::PendingKeys::kUnknown : 0;
  for (uint32_t i = 0; i < e.nkeys; ++i) {
    uint32_t len;
    std::memcpy(&len, read_keys_.data(), sizeof len);
    read_keys_.consume(sizeof len);
    if (check && need != gate::PendingKeys::kUnknown)
      need = std::max(need, pk.key_wait(e.db, std::string_view(read_keys_.data(), len)));
    read_keys_.consume(len);
  }
  read_wait_offset_ = need == gate::PendingKeys::kUnknown ? 0 : need;
  return need != 0;
}

void Session::apply_reply_effects(const Expect& e, std::string_view frame, const resp::Frame& f) {
  bool error = f.is_error();
  std::string_view text;
  const bool queued = e.maybe_queued && f.type == '+' && resp::frame_scalar(frame, &text) && text == "QUEUED";
  if (queued && e.special != Special::select) return;  // runs with EXEC
  switch (e.special) {
    case Special::select:
      db_change_answered(error || queued ? confirmed_db_ : e.arg);
      break;
    case Special::hello:
      if (!error && e.arg > 0) resp_ = e.arg;
      break;
    case Special::reset:
      db_change_answered(error ? confirmed_db_ : 0);
      if (!error) {
        resp_ = 2;
        subscribed_ = false;
        subscriptions_ = shard_subscriptions_ = channel_subscriptions_ = pattern_subscriptions_ = 0;
        monitor_ = false;
      }
      break;
    case Special::monitor:
      if (!error) monitor_ = true;
      break;
    case Special::multi:
      if (e.arg != 0 && in_multi_ && static_cast<uint32_t>(e.arg) == multi_serial_) {
        multi_answered_ = true;
        if (error) {  // no transaction: what was sent behind it ran (and was held) at once
          if (ctx_->gate && !multi_token_.empty()) ctx_->gate->pending().abandon(std::move(multi_token_));
          multi_token_ = gate::Token{};
          end_multi();
        }
      }
      break;
    case Special::exec:
      if (e.exec_pubsub && (f.type == '*' || f.type == '>')) count_exec_subscriptions(frame, f);
      if (e.db_change) {
        std::vector<MultiSelect> selects = std::move(exec_selects_.front());
        exec_selects_.pop_front();
        int db = confirmed_db_;
        resp::FrameElements el;
        if (f.type == '*' && e.exec_pubsub) {
          db = kDbUnknown;  // pub/sub replies do not line up with the commands
        } else if (f.type == '*' && resp::frame_elements(frame.substr(f.attr_length), SIZE_MAX, &el)) {
          for (const MultiSelect& m : selects)
            if (m.index < el.items.size() && el.types[m.index] == '+') db = m.db;
        } else if (f.type == '*') {
          db = kDbUnknown;
        }
        db_change_answered(db);
      }
      break;
    default:
      break;
  }
}

void Session::take_local_expects() {
  while (!expects_.empty()) {
    Expect& e = expects_.front();
    if (e.type == ExpectType::local) {
      queue_reply(std::string_view(local_.data(), e.local_len), e.local_probe, nullptr, e.close_after);
      local_.consume(e.local_len);
      expects_.pop_front();
    } else if (e.type == ExpectType::raw_switch) {
      raw_upstream_ = true;
      expects_.pop_front();
    } else {
      break;
    }
  }
}

void Session::queue_reply(std::string_view bytes, bool wait, gate::Token* token, bool close_after, bool message,
                          admin::HoldKind kind) {
  const uint64_t wait_at = std::exchange(read_wait_offset_, 0);  // set by read_needs_wait
  if (client_gone_) {
    if (token && ctx_->gate) ctx_->gate->cover(0, token, ctx_->now_ms);
    return;
  }
  uint64_t probe = 0;
  if (wait) {
    probe = wait_at ? ctx_->gate->cover_through(id_, wait_at) : 0;
    if (probe == 0) {
      probe = ctx_->gate->current_probe();
      ctx_->gate->cover(id_, token, ctx_->now_ms);
    }
  }
  if (!wait && held_.empty()) {
    out_.append(bytes);
    if (close_after) close_when_flushed_ = true;
    return;
  }
  held_buf_.append(bytes);
  held_.push_back(Held{static_cast<uint32_t>(bytes.size()), wait ? HeldState::wait_probe : HeldState::ready,
                       false, close_after, probe, wait ? kind : admin::HoldKind::ordered, uv_hrtime(), message});
  held_bytes_ += bytes.size();
  ctx_->total_held_bytes += bytes.size();
}

void Session::add_held_by_kind(uint64_t* counts, uint64_t* bytes) const {
  for (const Held& h : held_) {
    counts[static_cast<size_t>(h.kind)]++;
    bytes[static_cast<size_t>(h.kind)] += h.len;
  }
}

void Session::on_release() {
  if (closing_) return;
  release();
  update_reading();
}

void Session::on_fail(const std::string& reason) {
  fail_reason_ = reason;
  if (closing_) return;
  release();
  update_reading();
}

void Session::release() {
  uint64_t released = held_bytes_;
  const uint64_t through = ctx_->gate ? ctx_->gate->released_through() : 0;
  const uint64_t failed = ctx_->gate ? ctx_->gate->failed_through() : 0;
  while (!held_.empty()) {
    Held& h = held_.front();
    if (h.state == HeldState::wait_probe && h.probe > through) {
      if (h.probe > failed) break;
      // Not durable in time (or the log failed): never release it as success.
      std::string line;
      resp::append_error(&line, "ERR durable-proxy: reply withheld, write not durable: " +
                                    (fail_reason_.empty() ? ctx_->gate->fail_reason() : fail_reason_));
      if (h.len > 0) out_.append(line);
      count_release(ctx_->metrics, h.kind, h.since_ns, true, ctx_->log_failed);
    } else {
      out_.append(std::string_view(held_buf_.data(), h.len));
      count_release(ctx_->metrics, h.kind, h.since_ns, false, false);
    }
    if (h.close_after) close_when_flushed_ = true;
    held_buf_.consume(h.len);
    held_bytes_ -= h.len;
    held_.pop_front();
  }
  released -= held_bytes_;
  if (released) {
    bool was_full = ctx_->total_held_bytes >= ctx_->cfg->total_held_bytes;
    ctx_->total_held_bytes -= released;
    if (was_full && ctx_->total_held_bytes < ctx_->cfg->total_held_bytes && ctx_->held_bytes_dropped)
      ctx_->held_bytes_dropped();
  }
  flush_client();
}

void Session::flush_client() {
  if (closing_ || client_gone_) return;
  if (!client_writing_ && !out_.empty()) {
    uv_buf_t b = uv_buf_init(const_cast<char*>(out_.data()), static_cast<unsigned>(out_.size()));
    auto* st = reinterpret_cast<uv_stream_t*>(&client_);
    int n = uv_try_write(st, &b, 1);
    if (n > 0) out_.consume(static_cast<size_t>(n));
    else if (n < 0 && n != UV_EAGAIN) return client_left(uv_strerror(n));
    if (!out_.empty()) {
      writing_.swap(out_);
      client_writing_ = true;
      b = uv_buf_init(const_cast<char*>(writing_.data()), static_cast<unsigned>(writing_.size()));
      uv_write(&client_write_, st, &b, 1, &Session::on_client_written);
    }
  }
  if (client_writing_ || !out_.empty()) return;
  // Everything due is delivered: an idle session keeps no buffer memory
  // (5,000 idle clients cost ~4 KB each instead of ~12 KB).
  out_.release();
  writing_.release();
  if (close_when_flushed_) return close("protocol error or upstream refused");
  if (held_.empty() && upstream_closed_ && expects_.empty()) return close("upstream closed");
  if (draining_ && nothing_due()) return close("draining: no reply due");
}

void Session::on_client_written(uv_write_t* req, int status) {
  auto* self = static_cast<Session*>(req->data);
  self->client_writing_ = false;
  self->writing_.clear();
  if (self->closing_) return;
  if (status < 0) return self->client_left(uv_strerror(status));
  self->flush_client();
  self->update_reading();
}

// ---------------------------------------------------------------- endings

void Session::upstream_gone(const std::string& why) {
  if (upstream_closed_ || closing_) return;
  upstream_closed_ = true;
  LOG_DEBUG("session", "client %llu: %s", static_cast<unsigned long long>(id_), why.c_str());
  // Commands that got no reply may have run: their marks wait for a probe.
  cover_outstanding();
  expects_.clear();
  exec_selects_.clear();
  local_.clear();
  read_keys_.clear();
  if (connected_) uv_read_stop(reinterpret_cast<uv_stream_t*>(&upstream_));
  reading_upstream_ = false;
  if (client_gone_) return close(why);
  update_reading();
  flush_client();  // closes once held replies are released and delivered
}

void Session::client_left(const std::string& why) {
  if (client_gone_ || closing_) return;
  client_gone_ = true;
  LOG_DEBUG("session", "client %llu: %s", static_cast<unsigned long long>(id_), why.c_str());
  uint64_t dropped = held_bytes_;
  held_.clear();
  held_buf_.clear();
  held_bytes_ = 0;
  if (dropped) ctx_->total_held_bytes -= dropped;
  out_.clear();
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&client_));
  reading_client_ = false;
  if (upstream_closed_ || (!connected_ && !connecting_)) return close(why);
  if (connected_) start_swallow();
  // else: on_connect will start swallowing
}

void Session::start_swallow() {
  // Let the upstream finish what it already read, then close: its EOF
  // tells us every forwarded command has run, so the probe that follows
  // covers them all (the "swallow" of late replies).
  if (ctx_->gate == nullptr || (tokens_.empty() && multi_token_.empty())) return close("client left");
  flush_upstream();
  uv_shutdown(&shutdown_req_, reinterpret_cast<uv_stream_t*>(&upstream_), [](uv_shutdown_t* req, int) {
    (void)req;  // EOF (or an error) arrives through on_upstream_read
  });
  update_reading();
}

void Session::cover_outstanding() {
  if (!ctx_->gate) return;
  for (gate::Token& t : tokens_) ctx_->gate->cover(0, &t, ctx_->now_ms);
  tokens_.clear();
  if (!multi_token_.empty()) ctx_->gate->pending().abandon(std::move(multi_token_));
  multi_token_ = gate::Token{};
}

void Session::drain() {
  draining_ = true;
  update_reading();
  if (nothing_due()) close("shutdown: no reply due");
}

bool Session::nothing_due() const {
  // Messages (pub/sub, MONITOR lines, invalidations) are not replies: a
  // subscriber or MONITOR client has nothing due even while some are held
  // or being written.
  for (const Held& h : held_)
    if (!h.message) return false;
  if (!subscribed_ && !monitor_ && (!out_.empty() || client_writing_)) return false;
  for (const Expect& e : expects_) {
    if (e.type == ExpectType::pubsub && e.confirmations > 0) continue;  // subscribed: only messages follow
    if (e.blocks_forever) return true;  // and what is pipelined behind it waits as long
    return false;
  }
  return true;  // idle, subscribed, or in MONITOR
}

void Session::close(const std::string& why) {
  if (closing_) return;
  closing_ = true;
  close_reason_ = why;
  cover_outstanding();
  if (held_bytes_) ctx_->total_held_bytes -= held_bytes_;
  held_bytes_ = 0;
  if (ctx_->session_closed) ctx_->session_closed(this);
  auto close_one = [](uv_tcp_t* h) {
    if (uv_is_closing(reinterpret_cast<uv_handle_t*>(h))) return;
    uv_close(reinterpret_cast<uv_handle_t*>(h), &Session::on_handle_closed);
  };
  int handles = open_handles_;
  if (unreachable_timer_) {
    uv_close(reinterpret_cast<uv_handle_t*>(unreachable_timer_), &Session::on_handle_closed);
    --handles;
  }
  if (handles >= 1) close_one(&client_);
  if (handles >= 2) close_one(&upstream_);
  if (open_handles_ == 0) delete this;
}

void Session::on_handle_closed(uv_handle_t* h) {
  auto* self = static_cast<Session*>(h->data);
  if (h == reinterpret_cast<uv_handle_t*>(self->unreachable_timer_)) {
    delete self->unreachable_timer_;
    self->unreachable_timer_ = nullptr;
  }
  if (--self->open_handles_ == 0) delete self;
}

}  // namespace dp
