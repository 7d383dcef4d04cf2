// Session, reply path: frame what the upstream sent, match each frame to
// the pending record at the front (or tell it is a pub/sub message, a
// MONITOR line, a confirmation), apply its effect on the connection state,
// and queue it in order, held (gate::ReplyQueue) until the gate says
// durable when it must wait.  Lifetime and sockets: session.cc; the request
// path: session_requests.cc.
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
  while (pos < input.size() && life_.open()) {
    if (raw_upstream_ || client_gone_) {
      if (!client_gone_) queue_reply(input.substr(pos), {});
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
  bool pubsub_front = !pending_.empty() && pending_.front().type == PendingType::pubsub;
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
  const bool gated = ctx_->gate != nullptr;
  switch (frame_role(frame, f)) {
    case FrameRole::message:  // pub/sub, invalidations, MONITOR: held like writes
      queue_reply(frame, {.wait = gated, .message = true, .kind = admin::HoldKind::notification});
      return;
    case FrameRole::passive:
      // A MONITOR line of a non-write waits only for its turn behind held
      // lines; it is a message all the same (nothing due at shutdown).
      queue_reply(frame, {.message = monitor_ && f.type == '+'});
      return;
    case FrameRole::confirmation: {
      // A pub/sub command is complete once it got one confirmation per
      // argument (or, argument-less, once one of another kind arrives).
      auto complete = [this](const Pending& p) {
        return p.type == PendingType::pubsub && p.confirmations > 0 &&
               ((p.arg > 0 && p.confirmations >= static_cast<uint32_t>(p.arg)) ||
                !confirms(p.special, confirmation_kind_));
      };
      while (!pending_.empty() && complete(pending_.front())) finish_pubsub();
      // Sent whatever CLIENT REPLY says: the server marks (un)subscribe
      // confirmations, like messages, as pushes that OFF/SKIP do not silence.
      if (!pending_.empty() && pending_.front().type == PendingType::pubsub) {
        Pending& front = pending_.front();
        // Argument-less: the server answers for every member of that kind
        // it had when it ran, i.e. before this first confirmation.
        if (front.arg == 0 && front.confirmations == 0 && confirms(front.special, confirmation_kind_))
          front.arg = static_cast<int>(std::clamp<long long>(confirmation_prior_, 1, INT32_MAX));
        front.confirmations++;
      }
      queue_reply(frame, {});
      return;
    }
    case FrameRole::reply:
      break;
  }
  // A pub/sub command that already got its confirmations is complete once
  // a reply to something else arrives.
  while (!pending_.empty() && pending_.front().type == PendingType::pubsub && pending_.front().confirmations > 0)
    finish_pubsub();
  if (pending_.empty() || (pending_.front().type != PendingType::reply && pending_.front().type != PendingType::pubsub)) {
    // Nothing asked for it (or a local reply is due first, which cannot
    // happen: locals are taken as soon as they reach the front); on a slot
    // migration link (CLUSTER SYNCSLOTS ESTABLISH) the target node's own
    // messages to the source, which must wait for this log like a write's
    // reply.
    LOG_DEBUG("session", "client %llu: unsolicited reply from upstream", static_cast<unsigned long long>(id_));
    queue_reply(frame, {.wait = gated, .message = true, .kind = admin::HoldKind::notification});
    return;
  }
  Pending& p = pending_.front();  // popped once its reply is queued (its bytes are front_bytes())
  apply_reply_effects(p, frame, f);
  if (p.woff_marker) {
    if (f.type != ':') {
      std::string_view text;
      resp::frame_scalar(frame, &text);
      wait_untrusted_ = "the marker PUBLISH got: " + std::string(text.substr(0, 200));
    }
    awaiting_marker_ = false;
    resume_after_marker_ = true;
  }

  Hold h;
  h.known_at = shared_offset_;
  h.token = p.has_token ? &p.token : nullptr;
  h.kind = p.kind == Kind::read ? admin::HoldKind::read : admin::HoldKind::write;
  if (gated) {
    switch (p.kind) {
      case Kind::write:
      case Kind::keyspace_read:
        h.wait = true;
        break;
      case Kind::read: {
        const uint64_t need = read_wait(p);
        h.wait = need != 0;
        h.wait_at = need == gate::PendingKeys::kUnknown ? 0 : need;
        break;
      }
      case Kind::other:
        break;
    }
  }
  if (!p.drop) {
    queue_reply(frame, h);
  } else if (h.wait) {  // an empty entry keeps the order and resolves the marks
    h.kind = admin::HoldKind::write;
    queue_reply(std::string_view(), h);
  }
  pop_pending();
  take_locals();
}

uint64_t Session::read_wait(const Pending& front) const {
  // What this read waits for: only the writes pending on its keys now (0:
  // nothing; PendingKeys::kUnknown: a probe sent after this reply, as an
  // offset is not known; otherwise the offset the log must reach).
  const gate::PendingKeys& pk = ctx_->gate->pending();
  if (pk.empty()) return 0;
  // A read in a db not known when it was forwarded waits if anything is pending.
  if (front.db == kDbUnknown || (front.nbytes == 0 && pk.db_pending(front.db))) return gate::PendingKeys::kUnknown;
  uint64_t need = 0;
  for (std::string_view rest = front_bytes(); !rest.empty() && need != gate::PendingKeys::kUnknown;) {
    uint32_t len;
    std::memcpy(&len, rest.data(), sizeof len);
    need = std::max(need, pk.key_wait(front.db, rest.substr(sizeof len, len)));
    rest.remove_prefix(sizeof len + len);
  }
  return need;
}

void Session::apply_reply_effects(const Pending& p, std::string_view frame, const resp::Frame& f) {
  bool error = f.is_error();
  std::string_view text;
  const bool queued = p.maybe_queued && f.type == '+' && resp::frame_scalar(frame, &text) && text == "QUEUED";
  if (queued && p.special != Special::select) return;  // runs with EXEC
  switch (p.special) {
    case Special::select:
      db_change_answered(error || queued ? confirmed_db_ : p.arg);
      break;
    case Special::hello:
      if (!error && p.arg > 0) resp_ = p.arg;
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
      if (p.arg != 0 && in_multi_ && static_cast<uint32_t>(p.arg) == multi_serial_) {
        multi_answered_ = true;
        if (error) {  // no transaction: what was sent behind it ran (and was held) at once
          if (ctx_->gate && !multi_token_.empty()) ctx_->gate->pending().abandon(std::move(multi_token_));
          multi_token_ = gate::Token{};
          end_multi();
        }
      }
      break;
    case Special::exec:
      if (p.exec_pubsub && (f.type == '*' || f.type == '>')) count_exec_subscriptions(frame, f);
      if (p.db_change) {
        int db = confirmed_db_;
        resp::FrameElements el;
        if (f.type == '*' && p.exec_pubsub) {
          db = kDbUnknown;  // pub/sub replies do not line up with the commands
        } else if (f.type == '*' && resp::frame_elements(frame.substr(f.attr_length), SIZE_MAX, &el)) {
          for (const MultiSelect& m : p.selects)
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

void Session::take_locals() {
  while (!pending_.empty()) {
    Pending& p = pending_.front();
    if (p.type == PendingType::local) {
      queue_reply(front_bytes(), {.wait = p.local_probe, .close_after = p.close_after});
      pop_pending();
    } else if (p.type == PendingType::raw_switch) {
      raw_upstream_ = true;
      pop_pending();
    } else {
      break;
    }
  }
}

void Session::pop_pending() {
  Pending& p = pending_.front();
  if (p.has_token) --writes_in_flight_;
  pending_bytes_.consume(p.nbytes);
  pending_.pop_front();
}

void Session::finish_pubsub() {
  Pending& p = pending_.front();
  // A pub/sub command the table calls a write (none does): its marks go
  // with the next probe, as its confirmations are not held.
  if (p.has_token && ctx_->gate) ctx_->gate->cover(0, &p.token, ctx_->now_ms);
  pop_pending();
  take_locals();
}

void Session::queue_reply(std::string_view bytes, const Hold& h) {
  if (client_gone_) {
    if (h.token && ctx_->gate) ctx_->gate->cover(0, h.token, ctx_->now_ms);
    return;
  }
  uint64_t probe = 0;
  if (h.wait && h.known_at) {
    // Its own offset is known (a shared ROLE behind it): no probe.  A read
    // whose pending writes have known offsets needs only the smaller, and
    // joins the batch that releases them where there is one.
    probe = h.wait_at ? ctx_->gate->cover_through(id_, h.wait_at) : 0;
    if (probe == 0)
      probe = ctx_->gate->cover_at(id_, h.token, h.wait_at ? std::min(h.wait_at, h.known_at) : h.known_at,
                                   ctx_->now_ms);
  } else if (h.wait) {
    probe = h.wait_at ? ctx_->gate->cover_through(id_, h.wait_at) : 0;
    if (probe == 0) {
      probe = ctx_->gate->current_probe();
      ctx_->gate->cover(id_, h.token, ctx_->now_ms);
    }
  }
  if (!h.wait && held_.empty()) {
    out_.append(bytes);
    if (h.close_after) close_when_flushed_ = true;
    return;
  }
  held_.push(bytes, gate::ReplyQueue::Entry{.probe = probe,
                                            .kind = h.wait ? h.kind : admin::HoldKind::ordered,
                                            .since_ns = uv_hrtime(),
                                            .close_after = h.close_after,
                                            .message = h.message});
  ctx_->total_held_bytes += bytes.size();
}

void Session::on_release() {
  if (!life_.open()) return;
  release();
  update_reading();
}

void Session::on_fail(const std::string& reason) {
  fail_reason_ = reason;
  if (!life_.open()) return;
  release();
  update_reading();
}

void Session::release() {
  using State = gate::ReplyQueue::State;
  const uint64_t before = held_.bytes();
  const uint64_t through = ctx_->gate ? ctx_->gate->released_through() : 0;
  const uint64_t failed = ctx_->gate ? ctx_->gate->failed_through() : 0;
  for (State st; (st = held_.front_state(through, failed)) != State::wait; held_.pop_front()) {
    const gate::ReplyQueue::Entry& h = held_.front();
    if (st == State::fail) {
      // Not durable in time (or the log failed): never release it as success.
      std::string line;
      resp::append_error(&line, "ERR durable-proxy: reply withheld, write not durable: " +
                                    (fail_reason_.empty() ? ctx_->gate->fail_reason() : fail_reason_));
      if (h.len > 0) out_.append(line);
      count_release(ctx_->metrics, h.kind, h.since_ns, true, ctx_->log_failed);
    } else {
      out_.append(held_.front_bytes());
      count_release(ctx_->metrics, h.kind, h.since_ns, false, false);
    }
    if (h.close_after) close_when_flushed_ = true;
  }
  if (const uint64_t released = before - held_.bytes()) {
    bool was_full = ctx_->total_held_bytes >= ctx_->cfg->total_held_bytes;
    ctx_->total_held_bytes -= released;
    if (was_full && ctx_->total_held_bytes < ctx_->cfg->total_held_bytes && ctx_->held_bytes_dropped)
      ctx_->held_bytes_dropped();
  }
  flush_client();
}

}  // namespace dp
