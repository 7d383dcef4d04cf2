// The proxy's own control connection to the upstream: hiredis async on the
// libuv loop.  Carries COMMAND at start, ROLE probes (the offset a held
// reply must wait for), INFO, and REPLICAOF during a restore.
//
// Lifecycle: connect() (re)connects; on_up fires after AUTH (when
// configured) succeeded; on_down fires once per lost connection with the
// reason (address + cause), and every callback still queued is answered
// with a null reply and the reason.  Answers come as resp::Value trees
// (hiredis stays inside this file pair).  close() is idempotent: every
// callback given to it runs once, after the link's handles are closed; the
// object may be destroyed only after that.
//
// Loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "proxy/base/lifecycle.h"
#include "proxy/resp/value.h"

struct redisAsyncContext;

namespace dp::upstream {

struct ControlLinkOptions {
  std::string host;
  uint16_t port = 0;
  std::string username, password;
  uint32_t connect_timeout_ms = 2000;
  std::string client_name;  // CLIENT SETNAME once connected (CLIENT LIST); empty = not sent
};

class ControlLink {
 public:
  // reply is null when the link failed before answering; err then says why.
  // reply is valid only during the call.
  using ReplyFn = std::function<void(const resp::Value* reply, const std::string& err)>;

  ControlLink(uv_loop_t* loop, ControlLinkOptions opts, std::function<void()> on_up,
              std::function<void(const std::string& reason)> on_down);
  ~ControlLink();

  void connect();
  bool up() const { return up_; }
  const std::string& address() const { return address_; }

  // Sends a command (argv); the callback runs exactly once.
  void command(const std::vector<std::string>& argv, ReplyFn fn);
  // ROLE: the upstream's current replication offset.
  void role(std::function<void(bool ok, uint64_t offset, const std::string& err)> fn);

  // Idempotent: a later call's on_closed runs too (at once when already closed).
  void close(std::function<void()> on_closed);

 private:
  static void on_connect_cb(const redisAsyncContext* ac, int status);
  static void on_disconnect_cb(const redisAsyncContext* ac, int status);
  static void on_reply_cb(redisAsyncContext* ac, void* reply, void* privdata);
  static void on_timer(uv_timer_t* t);
  void lost(const std::string& reason);
  void finish_close();
  void name_connection();  // CLIENT SETNAME opts_.client_name
  void send(const std::vector<std::string>& argv, ReplyFn* fn);

  uv_loop_t* loop_;
  ControlLinkOptions opts_;
  std::string address_;
  std::function<void()> on_up_;
  std::function<void(const std::string&)> on_down_;
  redisAsyncContext* ac_ = nullptr;
  bool up_ = false;
  bool timer_closed_ = false;
  uv_timer_t timer_;
  Lifecycle life_;
};

}  // namespace dp::upstream
