#include "proxy/recovery/restorer.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <random>

#include "log/durable_log.h"
#include "proxy/base/info_fields.h"
#include "proxy/base/logger.h"

namespace dp {

namespace {

constexpr uint64_t kWindowBytes = 8 << 20;           // log bytes read from disk at a time

std::string one_time_password() {
  std::random_device rd;
  std::string out(Restorer::kPasswordPrefix);
  char hex[9];
  for (int i = 0; i < 4; ++i) {
    std::snprintf(hex, sizeof hex, "%08x", static_cast<unsigned>(rd()));
    out += hex;
  }
  return out;
}

// "key:value" of an INFO section; "" when absent.
std::string_view info_value(std::string_view info, std::string_view key) {
  return info_field(info, key).value_or(std::string_view());
}

uint64_t to_u64(std::string_view s) {
  uint64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

std::string reply_error(const resp::Value* r, const std::string& err) {
  if (!r) return err.empty() ? "no reply (connection lost)" : err;
  if (r->type == resp::Value::Type::error) return r->str;
  return "";
}

std::string mb(uint64_t bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f MB", double(bytes) / 1e6);
  return b;
}

}  // namespace

Restorer::Restorer(uv_loop_t* loop, upstream::ControlLink* control, RestoreOptions opts, Done done)
    : RestoreJob(control), loop_(loop), opts_(std::move(opts)), done_(std::move(done)) {
  uv_timer_init(loop_, &timer_);
  timer_.data = this;
  timer_open_ = true;
}

Restorer::~Restorer() = default;

uint64_t Restorer::now_ms() const { return uv_now(loop_); }

uint64_t Restorer::total_bytes() const {
  return opts_.checkpoint_bytes + (opts_.end_offset - opts_.checkpoint_offset);
}

void RestoreJob::command(const std::vector<std::string>& argv,
                         std::function<void(const resp::Value*, const std::string&)> fn) {
  std::weak_ptr<int> alive = alive_;
  control_->command(argv, [alive, fn = std::move(fn)](const resp::Value* r, const std::string& err) {
    if (alive.expired()) return;
    fn(r, err);
  });
}

void Restorer::start() {
  started_ms_ = last_log_ms_ = last_move_ms_ = offset_moved_ms_ = now_ms();
  LOG_INFO("restore", "restoring upstream %s: checkpoint %s (offset %llu, %s) and log (%llu, %llu] (%s), replid %s",
           opts_.upstream_name.c_str(), opts_.checkpoint_path.empty() ? "(none)" : opts_.checkpoint_path.c_str(),
           static_cast<unsigned long long>(opts_.checkpoint_offset), mb(opts_.checkpoint_bytes).c_str(),
           static_cast<unsigned long long>(opts_.checkpoint_offset), static_cast<unsigned long long>(opts_.end_offset),
           mb(opts_.end_offset - opts_.checkpoint_offset).c_str(), opts_.replid.c_str());
  uv_timer_start(&timer_, [](uv_timer_t* t) { static_cast<Restorer*>(t->data)->poll(); }, opts_.poll_ms,
                 opts_.poll_ms);
  get_masterauth();
}

// ------------------------------------------------------------ masterauth

void Restorer::get_masterauth() {
  phase_ = Phase::auth;
  command({"CONFIG", "GET", "masterauth"}, [this](const resp::Value* r, const std::string& err) {
    if (!r) return fail("CONFIG GET masterauth on upstream " + opts_.upstream_name + ": " + reply_error(r, err), false);
    if (r->type == resp::Value::Type::array && r->elems.size() == 2 && r->elems[1].type == resp::Value::Type::bulk) {
      previous_auth_ = r->elems[1].str;
      // A leftover of a restore that did not finish (the proxy died): not the operator's.
      if (previous_auth_.rfind(Restorer::kPasswordPrefix, 0) == 0) previous_auth_.clear();
      return set_masterauth();
    }
    LOG_WARN("restore", "CONFIG GET masterauth on upstream %s failed (%s): restoring without a one-time password; "
             "only recovery.restore_listen (%s) guards the restore listener",
             opts_.upstream_name.c_str(), reply_error(r, err).c_str(), opts_.listen_host.c_str());
    load_from_socket();
  });
}

void Restorer::set_masterauth() {
  std::string pw = one_time_password();
  command({"CONFIG", "SET", "masterauth", pw}, [this, pw](const resp::Value* r, const std::string& err) {
    if (!r) return fail("CONFIG SET masterauth on upstream " + opts_.upstream_name + ": " + reply_error(r, err), false);
    if (r->type == resp::Value::Type::error) {
      LOG_WARN("restore", "CONFIG SET masterauth on upstream %s failed (%s): restoring without a one-time password",
               opts_.upstream_name.c_str(), reply_error(r, err).c_str());
    } else {
      password_ = pw;
      auth_changed_ = true;
    }
    load_from_socket();
  });
}

// An empty upstream may load the checkpoint straight from the socket
// (repl-diskless-load on-empty-db) instead of writing it to disk first.
void Restorer::load_from_socket() {
  command({"CONFIG", "GET", "repl-diskless-load"}, [this](const resp::Value* r, const std::string&) {
    if (!r) return fail("CONFIG GET repl-diskless-load on upstream " + opts_.upstream_name + ": connection lost", false);
    if (r->type != resp::Value::Type::array || r->elems.size() != 2 || r->elems[1].type != resp::Value::Type::bulk ||
        r->elems[1].str != "disabled")
      return open_listener();
    command({"CONFIG", "SET", "repl-diskless-load", "on-empty-db"}, [this](const resp::Value* r2, const std::string&) {
      if (!r2) return fail("CONFIG SET repl-diskless-load on upstream " + opts_.upstream_name + ": connection lost",
                           false);
      if (r2->type != resp::Value::Type::error) diskless_changed_ = true;
      open_listener();
    });
  });
}

void Restorer::restore_masterauth(std::function<void()> then) {
  if (diskless_changed_ && control_->up()) {
    diskless_changed_ = false;
    return command({"CONFIG", "SET", "repl-diskless-load", "disabled"},
                   [this, then = std::move(then)](const resp::Value*, const std::string&) { restore_masterauth(then); });
  }
  if (!auth_changed_ || !control_->up()) return then();
  command({"CONFIG", "SET", "masterauth", previous_auth_},
          [this, then = std::move(then)](const resp::Value* r, const std::string& err) {
            std::string e = reply_error(r, err);
            if (!e.empty())
              LOG_WARN("restore", "upstream %s: cannot put masterauth back (CONFIG SET masterauth: %s)",
                       opts_.upstream_name.c_str(), e.c_str());
            else
              auth_changed_ = false;
            then();
          });
}

// ------------------------------------------------------------ REPLICAOF

void Restorer::open_listener() {
  upstream::RestorePrimaryOptions po;
  po.listen_host = opts_.listen_host;
  po.listen_port = opts_.listen_port;
  po.password = password_;
  po.replid = opts_.replid;
  po.checkpoint_offset = opts_.checkpoint_offset;
  po.rdb_path = opts_.checkpoint_path;
  upstream::RestorePrimary::Source* source = this;
  upstream::RestorePrimary::Listener* listener = this;
  primary_ = std::make_unique<upstream::RestorePrimary>(loop_, po, source, listener);
  std::string error;
  if (!primary_->listen(&error)) return fail(error, true);
  std::string host = opts_.listen_host;
  if (host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  listen_address_ = host + ":" + std::to_string(primary_->port());
  send_replicaof();
  (void)host;
}

void Restorer::send_replicaof() {
  phase_ = Phase::replicaof;
  std::string host = listen_address_.substr(0, listen_address_.rfind(':'));
  std::string port = listen_address_.substr(listen_address_.rfind(':') + 1);
  replicaof_sent_ = true;
  command({"REPLICAOF", host, port}, [this](const resp::Value* r, const std::string& err) {
    std::string e = reply_error(r, err);
    if (!e.empty()) return fail("REPLICAOF " + listen_address_ + " on upstream " + opts_.upstream_name + ": " + e, true);
    phase_ = Phase::transfer;
    replicaof_ms_ = now_ms();
    log_progress(true);
    LOG_INFO("restore", "upstream %s is now a replica of the restore listener %s%s", opts_.upstream_name.c_str(),
             listen_address_.c_str(), password_.empty() ? "" : " (one-time masterauth)");
  });
}

// ------------------------------------------------------------ transfer

bool Restorer::read(uint64_t offset, char* buf, size_t max, size_t* n, bool* end, std::string* error) {
  *n = 0;
  *end = false;
  if (offset > opts_.end_offset) {
    *end = true;
    return true;
  }
  if (window_pos_ >= window_.size() || offset != window_first_ + window_pos_) {
    window_.clear();
    window_pos_ = 0;
    window_first_ = offset;
    uint64_t to = std::min(opts_.end_offset, offset - 1 + kWindowBytes);
    std::string err = log::read_range(opts_.log_dir, offset - 1, to, [this](std::string_view chunk) {
      window_.append(chunk);
      return true;
    });
    if (!err.empty()) {
      *error = err;
      return false;
    }
  }
  *n = std::min(max, window_.size() - window_pos_);
  std::copy_n(window_.data() + window_pos_, *n, buf);
  window_pos_ += *n;
  if (window_pos_ == window_.size()) {
    window_.clear();
    window_.shrink_to_fit();
    window_pos_ = 0;
  }
  return true;
}

void Restorer::on_replica_connected(const std::string& peer) {
  replica_connected_ = true;
  LOG_INFO("restore", "upstream connected to the restore listener %s from %s", listen_address_.c_str(), peer.c_str());
}

void Restorer::on_progress(uint64_t rdb, uint64_t stream) {
  rdb_sent_ = rdb;
  stream_sent_ = stream;
  last_move_ms_ = now_ms();
  log_progress(false);
}

void Restorer::on_done(uint64_t end_offset) {
  all_sent_ = true;
  last_move_ms_ = now_ms();
  LOG_INFO("restore", "sent everything to upstream %s (%s, up to offset %llu); waiting for it to replay",
           opts_.upstream_name.c_str(), mb(rdb_sent_ + stream_sent_).c_str(),
           static_cast<unsigned long long>(end_offset));
}

void Restorer::on_failed(const std::string& reason) { fail(reason, true); }

void Restorer::log_progress(bool force) {
  uint64_t now = now_ms();
  if (!force && now - last_log_ms_ < opts_.progress_log_ms) return;
  last_log_ms_ = now;
  std::string st = status();
  LOG_INFO("restore", "%s", st.c_str());
  if (opts_.on_status) opts_.on_status(st);
}

std::string Restorer::status() const {
  uint64_t now = uv_now(loop_);
  double secs = double(now - started_ms_) / 1000.0;
  uint64_t sent = rdb_sent_ + stream_sent_, total = total_bytes();
  double rate = secs > 0 ? double(sent) / secs : 0;
  char b[256];
  switch (phase_) {
    case Phase::idle:
    case Phase::auth:
    case Phase::replicaof:
      return "restoring upstream " + opts_.upstream_name + ": preparing (REPLICAOF " +
             (listen_address_.empty() ? "pending" : listen_address_) + ")";
    case Phase::transfer:
      if (!all_sent_) {
        double left = rate > 0 ? double(total > sent ? total - sent : 0) / rate : 0;
        std::snprintf(b, sizeof b, "sent %s of %s (%.1f MB/s, about %.0f s left)", mb(sent).c_str(),
                      mb(total).c_str(), rate / 1e6, left);
      } else {
        std::snprintf(b, sizeof b, "all %s sent; upstream replayed up to offset %llu of %llu", mb(sent).c_str(),
                      static_cast<unsigned long long>(upstream_offset_),
                      static_cast<unsigned long long>(opts_.end_offset));
      }
      return "restoring upstream " + opts_.upstream_name + ": " + b;
    case Phase::promote:
    case Phase::done:
      return "restoring upstream " + opts_.upstream_name + ": finishing (REPLICAOF NO ONE)";
  }
  return "restoring";
}

// ------------------------------------------------------------ catching up

void Restorer::poll() {
  if (!life_.open() || phase_ != Phase::transfer) return;
  log_progress(false);
  uint64_t now = now_ms();
  if (now - std::max(last_move_ms_, offset_moved_ms_) > opts_.stall_timeout_ms)
    return fail("nothing moved for " + std::to_string(opts_.stall_timeout_ms / 1000) + " s (sent " +
                    mb(rdb_sent_ + stream_sent_) + ", upstream offset " + std::to_string(upstream_offset_) + " of " +
                    std::to_string(opts_.end_offset) + ")",
                true);
  if (!replica_connected_ && now - replicaof_ms_ > opts_.connect_timeout_ms)
    return fail("the upstream did not connect to the restore listener " + listen_address_ + " within " +
                    std::to_string(opts_.connect_timeout_ms / 1000) +
                    " s (can it reach recovery.restore_listen? see its log)",
                true);
  if (polling_) return;
  polling_ = true;
  command({"INFO", "replication"}, [this](const resp::Value* r, const std::string& err) {
    if (!r || r->type != resp::Value::Type::bulk) {
      polling_ = false;
      if (!r) fail("INFO replication on upstream " + opts_.upstream_name + ": " + reply_error(r, err), false);
      return;
    }
    std::string repl = r->str;
    command({"INFO", "persistence"}, [this, repl](const resp::Value* p, const std::string& err2) {
      polling_ = false;
      if (!p) return fail("INFO persistence on upstream " + opts_.upstream_name + ": " + reply_error(p, err2), false);
      on_poll_reply(repl, p->type == resp::Value::Type::bulk ? p->str : "");
    });
  });
}

void Restorer::on_poll_reply(const std::string& repl, const std::string& persistence) {
  if (!life_.open() || phase_ != Phase::transfer) return;
  uint64_t now = now_ms();
  bool synced = info_value(repl, "master_link_status") == "up" && info_value(repl, "master_sync_in_progress") != "1";
  bool loading = info_value(persistence, "loading") == "1";
  if (loading) offset_moved_ms_ = now;  // loading the RDB is progress too
  uint64_t off = synced ? to_u64(info_value(repl, "master_repl_offset")) : 0;
  if (synced && off != upstream_offset_) {
    upstream_offset_ = off;
    offset_moved_ms_ = now;
  }
  upstream_idle_ = synced && !loading;
  if (!all_sent_ || !upstream_idle_) return;
  if (upstream_offset_ >= opts_.end_offset) return promote(upstream_offset_);
  if (upstream_offset_ >= opts_.checkpoint_offset && now - offset_moved_ms_ >= opts_.partial_tail_ms) {
    LOG_WARN("restore",
             "upstream %s stopped at offset %llu, log ends at %llu: the log ends inside a command (the upstream died "
             "while sending it; never acknowledged); ending the restore there",
             opts_.upstream_name.c_str(), static_cast<unsigned long long>(upstream_offset_),
             static_cast<unsigned long long>(opts_.end_offset));
    promote(upstream_offset_);
  }
}

void Restorer::promote(uint64_t reached) {
  phase_ = Phase::promote;
  command({"REPLICAOF", "NO", "ONE"}, [this, reached](const resp::Value* r, const std::string& err) {
    std::string e = reply_error(r, err);
    if (!e.empty()) return fail("REPLICAOF NO ONE on upstream " + opts_.upstream_name + ": " + e, false);
    replicaof_sent_ = false;
    restore_masterauth([this, reached] {
      RestoreResult res;
      res.ok = true;
      res.reached = reached;
      res.bytes_sent = rdb_sent_ + stream_sent_;
      res.seconds = double(now_ms() - started_ms_) / 1000.0;
      phase_ = Phase::done;
      uv_timer_stop(&timer_);
      if (done_) {
        Done d = std::move(done_);
        done_ = nullptr;
        d(res);
      }
    });
  });
}

// ------------------------------------------------------------ failure

void Restorer::abort(const std::string& why) { fail(why, false); }

void Restorer::fail(const std::string& why, bool undo) {
  if (phase_ == Phase::done || !done_) return;
  phase_ = Phase::done;
  uv_timer_stop(&timer_);
  std::string reason = "restore of upstream " + opts_.upstream_name + " failed: " + why;
  auto report = [this, reason] {
    RestoreResult res;
    res.error = reason;
    res.bytes_sent = rdb_sent_ + stream_sent_;
    res.seconds = double(now_ms() - started_ms_) / 1000.0;
    if (done_) {
      Done d = std::move(done_);
      done_ = nullptr;
      d(res);
    }
  };
  if (!undo || !control_->up()) return report();
  // Put the upstream back as it was (a primary, its masterauth) before retrying.
  auto after_replicaof = [this, report] { restore_masterauth(report); };
  if (!replicaof_sent_) return after_replicaof();
  command({"REPLICAOF", "NO", "ONE"}, [after_replicaof](const resp::Value*, const std::string&) { after_replicaof(); });
}

void Restorer::close(std::function<void()> on_closed) {
  if (!life_.begin_close(std::move(on_closed))) return;
  done_ = nullptr;
  forget_commands();
  auto finished = [this] {
    if (--pending_closes_ > 0) return;
    life_.finish();
  };
  pending_closes_ = 1;  // released below, after every close was started
  if (timer_open_) {
    timer_open_ = false;
    pending_closes_++;
    uv_timer_stop(&timer_);
    // The close callback gets the handle only; finish through a heap copy.
    timer_.data = new std::function<void()>(finished);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), [](uv_handle_t* h) {
      auto* f = static_cast<std::function<void()>*>(h->data);
      (*f)();
      delete f;
    });
  }
  if (primary_) {
    pending_closes_++;
    primary_->close(finished);
  }
  finished();
}

}  // namespace dp
