// Session, reply path: frame what the upstream sent, match each frame to
// the Expect at the front (or tell it is a pub/sub message, a MONITOR line,
// a confirmation), apply its effect on the connection state, and queue it in
// order, held until the gate says durable when it must wait.  Lifetime and
// sockets: session.cc; the request path: session_requests.cc.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "proxy/base/ascii.h"
#include "proxy/base/logger.h"
#include "proxy/commands/monitor_line.h"
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

// MONITOR lines: "+1700000000.123456 [0 127.0.0.1:5000] ..."
bool looks_like_monitor_line(std::string_view frame) {
  if (frame.size() < 4 || frame[0] != '+') return false;
  size_t i = 1;
  while (i < frame.size() && frame[i] >= '0' && frame[i] <= '9') ++i;
  return i > 1 && i < frame.size() && frame[i] == '.' && frame.find(" [", i) != std::string_view::npos;
}

}  // namespace

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

}  // namespace dp
