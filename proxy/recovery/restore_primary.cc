#include "proxy/recovery/restore_primary.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "proxy/base/logger.h"
#include "proxy/resp/encoder.h"

namespace dp::upstream {
namespace {

constexpr size_t kMaxInput = 1 << 20;  // a replica sends only short commands

constexpr char kEmptyRdb[] = "REDIS0009\xff\0\0\0\0\0\0\0\0";

std::string lower(std::string_view v) {
  std::string s(v);
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// What a replica sends during the handshake: short commands only.
resp::RequestLimits replica_request_limits() {
  resp::RequestLimits l;
  l.max_bulk_len = 1 << 16;
  l.max_inline_len = 1 << 16;
  l.max_multibulk_len = 64;
  return l;
}

}  // namespace

std::string_view empty_rdb() { return std::string_view(kEmptyRdb, sizeof kEmptyRdb - 1); }

struct RestorePrimary::WriteReq {
  uv_write_t req{};
  std::string data;
  int kind = 0;  // 0 protocol, 1 RDB, 2 stream
  RestorePrimary* self = nullptr;
};

RestorePrimary::RestorePrimary(uv_loop_t* loop, RestorePrimaryOptions opts, Source* source,
                               Listener* listener)
    : loop_(loop), opts_(std::move(opts)), source_(source), listener_(listener),
      parser_(replica_request_limits()) {}

RestorePrimary::~RestorePrimary() {
  assert((life_.closed() || (!server_open_ && !client_open_)) &&
         "RestorePrimary destroyed before close() completed");
  if (rdb_fd_ >= 0) ::close(rdb_fd_);
}

std::string RestorePrimary::where() const {
  return "restore primary " + opts_.listen_host + ":" + std::to_string(bound_port_) + ": ";
}

bool RestorePrimary::listen(std::string* error) {
  sockaddr_storage addr{};
  if (uv_ip4_addr(opts_.listen_host.c_str(), opts_.listen_port,
                  reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
      uv_ip6_addr(opts_.listen_host.c_str(), opts_.listen_port,
                  reinterpret_cast<sockaddr_in6*>(&addr)) != 0) {
    *error = "restore primary: recovery.restore_listen host '" + opts_.listen_host +
             "' is not an IP address";
    return false;
  }
  uv_tcp_init(loop_, &server_);
  server_.data = this;
  server_open_ = true;
  int r = uv_tcp_bind(&server_, reinterpret_cast<sockaddr*>(&addr), 0);
  if (r == 0) {
    r = uv_listen(reinterpret_cast<uv_stream_t*>(&server_), 4, [](uv_stream_t* s, int status) {
      auto* self = static_cast<RestorePrimary*>(s->data);
      if (status < 0) {
        self->fail(std::string("accept failed: ") + uv_strerror(status));
      } else {
        self->on_accept();
      }
    });
  }
  if (r != 0) {
    *error = "restore primary: cannot listen on " + opts_.listen_host + ":" +
             std::to_string(opts_.listen_port) + ": " + uv_strerror(r);
    return false;  // close() releases the handle
  }
  sockaddr_storage bound{};
  int len = sizeof bound;
  uv_tcp_getsockname(&server_, reinterpret_cast<sockaddr*>(&bound), &len);
  bound_port_ = ntohs(bound.ss_family == AF_INET6
                          ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                          : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return true;
}

void RestorePrimary::on_accept() {
  if (phase_ != Phase::waiting) return;
  uv_tcp_init(loop_, &client_);
  client_.data = this;
  client_open_ = true;
  if (uv_accept(reinterpret_cast<uv_stream_t*>(&server_),
                reinterpret_cast<uv_stream_t*>(&client_)) != 0) {
    fail("accept failed");
    return;
  }
  // One replica only: stop listening.
  server_open_ = false;
  pending_closes_++;
  uv_close(reinterpret_cast<uv_handle_t*>(&server_), [](uv_handle_t* h) {
    auto* self = static_cast<RestorePrimary*>(h->data);
    self->pending_closes_--;
    self->maybe_finish_close();
  });
  phase_ = Phase::handshake;
  sockaddr_storage peer{};
  int len = sizeof peer;
  char name[64] = "?";
  if (uv_tcp_getpeername(&client_, reinterpret_cast<sockaddr*>(&peer), &len) == 0) {
    uv_ip_name(reinterpret_cast<sockaddr*>(&peer), name, sizeof name);
  }
  peer_ = name;
  uv_tcp_nodelay(&client_, 1);
  listener_->on_replica_connected(peer_);
  if (!life_.open() || phase_ != Phase::handshake) return;
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&client_),
      [](uv_handle_t*, size_t, uv_buf_t* buf) {
        static thread_local char scratch[16 * 1024];
        *buf = uv_buf_init(scratch, sizeof scratch);
      },
      [](uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
        auto* self = static_cast<RestorePrimary*>(s->data);
        if (nread > 0) {
          self->on_read(buf->base, static_cast<size_t>(nread));
        } else if (nread < 0) {
          if (self->phase_ == Phase::done || self->phase_ == Phase::failed) {
            uv_read_stop(s);  // the replica left after the restore (REPLICAOF NO ONE)
          } else {
            self->fail(std::string("the replica ") + self->peer_ + " went away: " +
                       uv_strerror(static_cast<int>(nread)));
          }
        }
      });
}

void RestorePrimary::on_read(const char* data, size_t n) {
  in_.append(data, n);
  size_t pos = 0;
  while (pos < in_.size() && life_.open() && phase_ != Phase::failed) {
    resp::ParseStatus st = parser_.parse(std::string_view(in_).substr(pos), &request_);
    if (st == resp::ParseStatus::incomplete) break;
    if (st == resp::ParseStatus::error) {
      fail("protocol error from the replica " + peer_ + ": " + parser_.error());
      return;
    }
    pos += request_.consumed;
    if (st == resp::ParseStatus::ok && !request_.args.empty() && !handle_command(request_.args)) return;
  }
  in_.erase(0, pos);
  if (in_.size() > kMaxInput) fail("the replica " + peer_ + " sent an over-long command");
}

bool RestorePrimary::handle_command(const std::vector<std::string_view>& argv) {
  const std::string cmd = lower(argv[0]);
  if (cmd == "ping") {
    reply_simple("PONG");
    return true;
  }
  if (cmd == "auth") {
    if (opts_.password.empty() || argv.back() == opts_.password) {
      authed_ = true;
      reply_simple("OK");
      return true;
    }
    reply_error("WRONGPASS invalid username-password pair or user is disabled.");
    fail("the replica " + peer_ + " sent a wrong password (expected the one-time masterauth)");
    return false;
  }
  if (!opts_.password.empty() && !authed_) {
    reply_error("NOAUTH Authentication required.");
    return true;
  }
  if (cmd == "replconf") {
    if (argv.size() >= 3 && lower(argv[1]) == "ack") {
      uint64_t off = 0;
      std::from_chars(argv[2].data(), argv[2].data() + argv[2].size(), off);
      replica_ack_ = off;
      listener_->on_replica_ack(off);
      return life_.open();
    }
    if (argv.size() >= 2 && lower(argv[1]) == "getack") return true;
    reply_simple("OK");
    return true;
  }
  if (cmd == "psync") {
    if (phase_ != Phase::handshake) {
      reply_error("ERR PSYNC already received");
      return true;
    }
    begin_full_sync();
    return life_.open() && phase_ != Phase::failed;
  }
  if (cmd == "sync") {
    reply_error("ERR the restore primary speaks PSYNC only");
    return true;
  }
  reply_error("ERR unknown command '" + std::string(argv[0].substr(0, 64)) + "' (restore primary)");
  return true;
}

void RestorePrimary::begin_full_sync() {
  uint64_t size = empty_rdb().size();
  use_empty_rdb_ = opts_.rdb_path.empty();
  if (!use_empty_rdb_) {
    rdb_fd_ = ::open(opts_.rdb_path.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st {};
    if (rdb_fd_ < 0 || ::fstat(rdb_fd_, &st) != 0) {
      fail("cannot open checkpoint " + opts_.rdb_path + ": " + std::strerror(errno));
      return;
    }
    size = static_cast<uint64_t>(st.st_size);
  }
  rdb_left_ = size;
  next_offset_ = opts_.checkpoint_offset + 1;
  phase_ = Phase::rdb;
  LOG_INFO("restore", "%sFULLRESYNC %s %llu to %s, RDB %llu bytes from %s", where().c_str(),
           opts_.replid.c_str(), static_cast<unsigned long long>(opts_.checkpoint_offset),
           peer_.c_str(), static_cast<unsigned long long>(size),
           use_empty_rdb_ ? "(empty)" : opts_.rdb_path.c_str());
  // The RDB goes as `$<len>\r\n<bytes>`: a bulk header without the bulk's
  // trailing CRLF (what a primary sends on a disk-based full sync).
  std::string head;
  resp::append_simple(&head, "FULLRESYNC " + opts_.replid + " " + std::to_string(opts_.checkpoint_offset));
  head += "$" + std::to_string(size) + "\r\n";
  write(std::move(head), false);
  pump();
}

void RestorePrimary::pump() {
  if (pumping_) return;
  pumping_ = true;
  while (life_.open() && queued_ < opts_.max_queued_bytes &&
         (phase_ == Phase::rdb || (phase_ == Phase::stream && !source_ended_))) {
    if (phase_ == Phase::rdb) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(opts_.chunk_bytes, rdb_left_));
      std::string buf;
      if (use_empty_rdb_) {
        buf.assign(empty_rdb().substr(empty_rdb_pos_, want));
        empty_rdb_pos_ += want;
      } else if (want > 0) {
        buf.resize(want);
        ssize_t got = ::read(rdb_fd_, buf.data(), want);
        if (got <= 0) {
          fail("reading checkpoint " + opts_.rdb_path + " at byte " +
               std::to_string(rdb_sent_ + queued_) + ": " +
               (got < 0 ? std::strerror(errno) : "file shorter than its size"));
          break;
        }
        buf.resize(static_cast<size_t>(got));
      }
      rdb_left_ -= buf.size();
      if (!buf.empty()) write(std::move(buf), true);
      if (rdb_left_ == 0) {
        if (rdb_fd_ >= 0) ::close(rdb_fd_);
        rdb_fd_ = -1;
        phase_ = Phase::stream;
      }
      continue;
    }
    std::string buf(opts_.chunk_bytes, '\0');
    size_t n = 0;
    bool end = false;
    std::string error;
    if (!source_->read(next_offset_, buf.data(), buf.size(), &n, &end, &error)) {
      fail("reading the log at offset " + std::to_string(next_offset_) + ": " + error);
      break;
    }
    if (n == 0) {
      source_ended_ = end;
      break;
    }
    buf.resize(n);
    next_offset_ += n;
    write(std::move(buf), false);  // stream_sent_ counts it once written
  }
  pumping_ = false;
  if (life_.open() && phase_ == Phase::stream && source_ended_ && queued_ == 0) {
    phase_ = Phase::done;
    LOG_INFO("restore", "%ssent everything up to offset %llu", where().c_str(),
             static_cast<unsigned long long>(next_offset_ - 1));
    listener_->on_done(next_offset_ - 1);
  }
}

void RestorePrimary::wake() {
  if (phase_ == Phase::stream && source_ended_) source_ended_ = false;  // the log grew
  pump();
}

void RestorePrimary::reply_simple(std::string_view s) {
  std::string out;
  resp::append_simple(&out, s);
  write(std::move(out), false);
}

void RestorePrimary::reply_error(std::string_view msg) {
  std::string out;
  resp::append_error(&out, msg);
  write(std::move(out), false);
}

void RestorePrimary::write(std::string data, bool counts_as_rdb) {
  if (!client_open_) return;
  auto* w = new WriteReq;
  w->data = std::move(data);
  w->kind = counts_as_rdb ? 1 : (phase_ == Phase::stream ? 2 : 0);
  w->self = this;
  queued_ += w->data.size();
  max_queued_seen_ = std::max(max_queued_seen_, queued_);
  uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  int r = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&client_), &buf, 1,
                   [](uv_write_t* req, int status) {
                     auto* w = reinterpret_cast<WriteReq*>(req);
                     RestorePrimary* self = w->self;
                     self->queued_ -= w->data.size();
                     if (w->kind == 1) self->rdb_sent_ += w->data.size();
                     if (w->kind == 2) self->stream_sent_ += w->data.size();
                     int kind = w->kind;
                     delete w;
                     if (!self->life_.open() || self->phase_ == Phase::failed) return;
                     if (status < 0) {
                       self->fail(std::string("writing to the replica ") + self->peer_ + ": " +
                                  uv_strerror(status));
                       return;
                     }
                     if (kind != 0) self->listener_->on_progress(self->rdb_sent_, self->stream_sent_);
                     self->pump();
                   });
  if (r < 0) {
    queued_ -= w->data.size();
    delete w;
    fail(std::string("writing to the replica ") + peer_ + ": " + uv_strerror(r));
  }
}

void RestorePrimary::fail(const std::string& why) {
  if (!life_.open() || phase_ == Phase::failed) return;
  phase_ = Phase::failed;
  if (rdb_fd_ >= 0) ::close(rdb_fd_);
  rdb_fd_ = -1;
  std::string reason = where() + why;
  LOG_WARN("restore", "%s", reason.c_str());
  listener_->on_failed(reason);
}

void RestorePrimary::close(std::function<void()> on_closed) {
  if (!life_.begin_close(std::move(on_closed))) return;
  auto closed = [](uv_handle_t* h) {
    auto* self = static_cast<RestorePrimary*>(h->data);
    self->pending_closes_--;
    self->maybe_finish_close();
  };
  if (server_open_) {
    server_open_ = false;
    pending_closes_++;
    uv_close(reinterpret_cast<uv_handle_t*>(&server_), closed);
  }
  if (client_open_) {
    client_open_ = false;
    pending_closes_++;
    uv_close(reinterpret_cast<uv_handle_t*>(&client_), closed);
  }
  maybe_finish_close();
}

void RestorePrimary::maybe_finish_close() {
  if (!life_.closing() || pending_closes_ > 0) return;
  if (rdb_fd_ >= 0) ::close(rdb_fd_);
  rdb_fd_ = -1;
  life_.finish();
}

}  // namespace dp::upstream
