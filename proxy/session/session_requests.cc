// Session, request path: parse what the client sent, classify it, decide
// how its reply will be handled (one Pending record per command, in order),
// mark the keys of writes pending, and forward the same bytes upstream.
// Lifetime and sockets: session.cc; the reply path: session_replies.cc.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "proxy/base/ascii.h"
#include "proxy/base/logger.h"
#include "proxy/commands/connection_state.h"
#include "proxy/commands/history_guard.h"
#include "proxy/gate/pending_keys.h"
#include "proxy/resp/encoder.h"
#include "proxy/session/session.h"
#include "proxy/session/session_metrics.h"
#include "proxy/session/session_text.h"

namespace dp {

using commands::Kind;
using commands::Special;
using commands::iequals;
using session_text::parse_int;

namespace {

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

bool is_pubsub_special(Special s) {
  return s == Special::subscribe || s == Special::psubscribe || s == Special::ssubscribe ||
         s == Special::unsubscribe || s == Special::punsubscribe || s == Special::sunsubscribe;
}

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

}  // namespace

void Session::process_requests(std::string_view input, ByteBuffer* owner) {
  size_t pos = 0;
  if (raw_client_) {
    forward(input);
    pos = input.size();
  }
  while (pos < input.size() && !stop_requests_ && !moving_ && life_.open()) {
    if (shared_ && (shared_in_flight_ >= kSharedInFlight || out_.size() + writing_.size() >= kSharedUnsentMove)) {
      // A client that pipelines deeper than kSharedInFlight gains nothing
      // from sharing, and one whose replies pile up unsent (it does not
      // read, or they are big) must get TCP backpressure up to the
      // upstream: either moves to its own connection.  So what the proxy
      // buffers beyond its bounds for a shared client is at most
      // kSharedInFlight replies (the shared connection cannot stop reading
      // for one client).
      begin_move();
      break;
    }
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
    const uint64_t forwarded_before = forwarded_;
    handle_request(bytes);
    if (moving_) {  // not taken: it runs once the session has its own connection
      pos -= req_.consumed;
      break;
    }
    count_command(ctx_->metrics, forwarded_ != forwarded_before, cls_.kind);
    if (raw_client_) {  // SYNC/PSYNC, SYNCSLOTS ESTABLISH: everything after it is a stream
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
  Pending p;
  p.type = PendingType::local;
  p.kind = Kind::other;
  p.close_after = close_after;
  p.local_probe = wait;
  push_pending(std::move(p), reply);
  take_locals();
}

void Session::push_pending(Pending&& p, std::string_view bytes) {
  if (p.has_token) ++writes_in_flight_;
  p.nbytes += static_cast<uint32_t>(bytes.size());
  pending_bytes_.append(bytes);
  pending_.push_back(std::move(p));
}

void Session::add_read_key(Pending* p, std::string_view key) {
  const uint32_t len = static_cast<uint32_t>(key.size());
  pending_bytes_.append(std::string_view(reinterpret_cast<const char*>(&len), sizeof len));
  pending_bytes_.append(key);
  p->nbytes += static_cast<uint32_t>(sizeof len + key.size());
}

void Session::forward(std::string_view bytes) {
  ++forwarded_;
  if (shared_) {
    ++shared_in_flight_;
    if (cls_.kind == Kind::write) wrote_shared_ = true;
    // A ROLE behind it gives its reply's offset where the gate holds it:
    // writes and keyspace reads.  Not for key reads: most read keys nobody
    // writes and go at once, and a ROLE would make them wait for its
    // answer (measured: GETs under writes 0.90x); the few that hit a
    // pending write take a probe.
    const bool held = ctx_->gate && (cls_.kind == Kind::write || cls_.kind == Kind::keyspace_read);
    return shared_->send(this, bytes, held);
  }
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
  if (shared_) {
    if (commands::keeps_setinfo(cls_, args) && ctx_->shared_pool && ctx_->shared_pool->setinfo_allowed()) {
      (iequals(args[2], "lib-name") ? kept_lib_name_ : kept_lib_ver_).assign(bytes);
      return answer_locally("+OK\r\n");
    }
    // Inline requests too: Valkey's inline limit is fixed (64 KB), and one
    // past it would close the shared connection for every client on it.
    if (req_.is_inline || commands::needs_own_connection(cls_, args)) return begin_move();
  }
  if (!wait_untrusted_.empty() && (cls_.special == Special::wait || cls_.special == Special::waitaof) &&
      !(cls_.special == Special::waitaof && durable && args.size() == 4 && args[2] == "0")) {
    std::string line;
    resp::append_error(&line, "ERR durable-proxy: " + std::string(args[0]) +
                                  " refused: this connection's earlier writes ran on a shared upstream "
                                  "connection and the server cannot count them here (" + wait_untrusted_ + ")");
    if (reply_mode_ != ReplyMode::on) return consume_skip();
    return answer_locally(line);
  }

  Pending p;
  p.kind = cls_.kind;
  p.special = cls_.special;
  p.db = db_;
  p.blocks_forever = blocks_forever(cls_, args);

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
      p.type = PendingType::raw_switch;
      p.kind = Kind::other;
      forward(bytes);
      push_pending(std::move(p));
      return take_locals();  // at the front already: the upstream's bytes are raw from now on
    case Special::cluster_syncslots:
      // CLUSTER SYNCSLOTS ESTABLISH (Valkey 9 atomic slot migration, sent by
      // the source node to the target's announced port): what follows is
      // the source's snapshot and stream of the slots, to which the target
      // answers nothing (reply_off), and the target sends its own messages
      // back (REQUEST-PAUSE, REQUEST-FAILOVER, ACK; cluster_migrateslots.c).
      // So requests go raw from here (no pending record would ever get a
      // reply), and every frame after ESTABLISH's reply reaches the reply
      // path with nothing pending: held until durable (on_frame).  The
      // source gives the slots up -- and deletes their keys -- once it got
      // REQUEST-FAILOVER, which the target sends after it applied the whole
      // stream: held, it leaves only once this log has all of it.
      if (args.size() < 3 || !iequals(args[2], "establish")) break;
      if (in_multi_)
        return refuse_queued("ERR durable-proxy: CLUSTER SYNCSLOTS ESTABLISH is not allowed inside a transaction");
      raw_client_ = true;
      break;
    case Special::select:
      p.arg = args.size() == 2 ? parse_db_index(args[1]) : kDbUnknown;
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
      if (args.size() > 1 && parse_int(args[1], &v)) p.arg = static_cast<int>(v);
      break;
    }
    default:
      break;
  }
  if (is_pubsub_special(cls_.special)) {
    p.type = PendingType::pubsub;
    p.arg = static_cast<int>(std::min<size_t>(args.size() - 1, INT32_MAX));  // one confirmation each; 0: unknown
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
      multi_selects_.push_back(MultiSelect{multi_queued_, p.arg});
      db_ = kDbUnknown;  // commands queued after it run in the db it picks
      if (!surely_queued) p.db_change = true;
    }
    p.maybe_queued = !surely_queued;
    if (is_pubsub_special(cls_.special)) multi_pubsub_ = true;
    ++multi_queued_;
  }
  if (surely_queued) {
    p.kind = Kind::other;
    p.special = Special::none;  // its effect, if any, comes with EXEC's reply
    p.type = PendingType::reply;
  } else if (cls_.special == Special::multi) {
    if (!in_multi_) {
      in_multi_ = true;
      multi_answered_ = false;
      p.arg = static_cast<int>(++multi_serial_);  // this MULTI opened the transaction
    }
    p.kind = Kind::other;
  } else if (cls_.special == Special::exec && in_multi_) {
    p.kind = Kind::write;
    p.exec_pubsub = multi_pubsub_;
    if (!multi_selects_.empty()) {
      p.db_change = true;
      p.selects = std::move(multi_selects_);
    }
    end_multi();
    if (durable) {
      p.token = std::move(multi_token_);
      multi_token_ = gate::Token{};
      p.has_token = true;
    }
  } else if (cls_.special == Special::discard && in_multi_) {
    end_multi();
    if (durable) ctx_->gate->pending().abandon(std::move(multi_token_));
    multi_token_ = gate::Token{};
    p.kind = Kind::other;
  } else if (durable && cls_.kind == Kind::write) {
    mark_write(&p.token);
    p.has_token = true;
  } else if (durable && cls_.kind == Kind::read) {
    // Its keys are looked up when the reply arrives (read_wait).
    for (std::string_view k : cls_.keys) add_read_key(&p, k);
  }

  if (!queued && (p.special == Special::select || p.special == Special::reset)) p.db_change = true;
  if (p.db_change) {
    // Until the server answers, the db of what follows is not known.
    ++db_changes_;
    db_ = kDbUnknown;
  }

  if (reply_mode_ == ReplyMode::off) p.drop = true;
  else if (reply_mode_ == ReplyMode::skip_next) {
    p.drop = true;
    reply_mode_ = ReplyMode::on;
  }
  forward(bytes);
  push_pending(std::move(p));
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
    Pending bad;
    bad.kind = Kind::other;
    bad.drop = true;
    bad.db = db_;
    forward("*1\r\n$31\r\ndurable-proxy-refused-in-multi!\r\n");
    push_pending(std::move(bad));
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

}  // namespace dp
