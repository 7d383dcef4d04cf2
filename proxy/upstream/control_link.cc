#include "proxy/upstream/control_link.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <cstring>

#include "proxy/base/logger.h"
#include "proxy/upstream/hiredis_uv.h"

namespace dp::upstream {

namespace {

ControlLink* owner(const redisAsyncContext* ac) { return static_cast<ControlLink*>(ac->data); }

// The connection speaks RESP2: hiredis's RESP3 types never arrive.
resp::Value to_value(const redisReply* r) {
  resp::Value v;
  switch (r->type) {
    case REDIS_REPLY_STRING: v.type = resp::Value::Type::bulk; v.str.assign(r->str, r->len); break;
    case REDIS_REPLY_STATUS: v.type = resp::Value::Type::simple; v.str.assign(r->str, r->len); break;
    case REDIS_REPLY_ERROR: v.type = resp::Value::Type::error; v.str.assign(r->str, r->len); break;
    case REDIS_REPLY_INTEGER: v.type = resp::Value::Type::integer; v.integer = r->integer; break;
    case REDIS_REPLY_ARRAY:
      v.type = resp::Value::Type::array;
      v.elems.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) v.elems.push_back(to_value(r->element[i]));
      break;
    default: v.type = resp::Value::Type::null; break;
  }
  return v;
}

}  // namespace

ControlLink::ControlLink(uv_loop_t* loop, ControlLinkOptions opts, std::function<void()> on_up,
                         std::function<void(const std::string&)> on_down)
    : loop_(loop), opts_(std::move(opts)), on_up_(std::move(on_up)), on_down_(std::move(on_down)) {
  address_ = opts_.host + ":" + std::to_string(opts_.port);
  uv_timer_init(loop_, &timer_);
  timer_.data = this;
}

ControlLink::~ControlLink() = default;

void ControlLink::connect() {
  if (ac_ || !life_.open()) return;
  ac_ = redisAsyncConnect(opts_.host.c_str(), opts_.port);
  if (!ac_ || ac_->err) {
    std::string why = ac_ ? ac_->errstr : "out of memory";
    if (ac_) redisAsyncFree(ac_);
    ac_ = nullptr;
    lost("cannot connect to upstream " + address_ + ": " + why);
    return;
  }
  ac_->data = this;
  if (attach_hiredis_to_uv(ac_, loop_) != REDIS_OK) {  // not redisLibuvAttach: see hiredis_uv.h
    redisAsyncFree(ac_);
    ac_ = nullptr;
    lost("cannot attach the control link to the event loop");
    return;
  }
  redisAsyncSetConnectCallback(ac_, &ControlLink::on_connect_cb);
  redisAsyncSetDisconnectCallback(ac_, &ControlLink::on_disconnect_cb);
  uv_timer_start(&timer_, &ControlLink::on_timer, opts_.connect_timeout_ms, 0);
}

void ControlLink::on_timer(uv_timer_t* t) {
  auto* self = static_cast<ControlLink*>(t->data);
  if (self->up_ || !self->ac_) return;
  redisAsyncContext* ac = self->ac_;
  self->ac_ = nullptr;
  ac->data = nullptr;
  redisAsyncFree(ac);  // runs queued callbacks with null replies
  self->lost("upstream " + self->address_ + " did not accept the control connection within " +
             std::to_string(self->opts_.connect_timeout_ms) + " ms");
}

void ControlLink::on_connect_cb(const redisAsyncContext* ac, int status) {
  ControlLink* self = owner(ac);
  if (!self) return;
  uv_timer_stop(&self->timer_);
  if (status != REDIS_OK) {
    std::string why = ac->errstr;
    self->ac_ = nullptr;  // hiredis frees the context after this callback
    self->lost("cannot connect to upstream " + self->address_ + ": " + why);
    return;
  }
  if (self->opts_.password.empty()) {
    self->name_connection();
    self->up_ = true;
    self->on_up_();
    return;
  }
  std::vector<std::string> argv{"AUTH"};
  if (!self->opts_.username.empty()) argv.push_back(self->opts_.username);
  argv.push_back(self->opts_.password);
  self->command(argv, [self](const resp::Value* r, const std::string& err) {
    if (!r) return;  // the link dropped: on_down already reported it
    if (r->type == resp::Value::Type::error) {
      std::string why = std::string("upstream ") + self->address_ + " refused the proxy's AUTH: " + r->str;
      if (self->ac_) redisAsyncDisconnect(self->ac_);
      LOG_ERROR("control", "%s", why.c_str());
      return;
    }
    self->name_connection();
    self->up_ = true;
    self->on_up_();
  });
}

void ControlLink::name_connection() {
  if (opts_.client_name.empty()) return;
  // Pipelined ahead of whatever on_up sends; a refusal costs only the name.
  command({"CLIENT", "SETNAME", opts_.client_name}, [this](const resp::Value* r, const std::string&) {
    if (r && r->type == resp::Value::Type::error)
      LOG_WARN("control", "upstream %s refused CLIENT SETNAME %s: %s; the link stays unnamed", address_.c_str(),
               opts_.client_name.c_str(), r->str.c_str());
  });
}

void ControlLink::on_disconnect_cb(const redisAsyncContext* ac, int status) {
  ControlLink* self = owner(ac);
  if (!self) return;
  std::string why = status == REDIS_OK ? "closed" : ac->errstr;
  self->ac_ = nullptr;
  self->lost("control link to upstream " + self->address_ + " lost: " + why);
}

void ControlLink::lost(const std::string& reason) {
  up_ = false;
  if (!life_.open()) return finish_close();
  on_down_(reason);
}

void ControlLink::finish_close() {
  if (ac_ || !timer_closed_ || !life_.closing()) return;
  life_.finish();  // may destroy this
}

void ControlLink::send(const std::vector<std::string>& argv, ReplyFn* fn) {
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
  ptrs.reserve(argv.size());
  lens.reserve(argv.size());
  for (const auto& a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  if (redisAsyncCommandArgv(ac_, &ControlLink::on_reply_cb, fn, static_cast<int>(argv.size()), ptrs.data(),
                            lens.data()) != REDIS_OK) {
    (*fn)(nullptr, "cannot queue command on the control link");
    delete fn;
  }
}

void ControlLink::command(const std::vector<std::string>& argv, ReplyFn fn) {
  if (!ac_) {
    fn(nullptr, "control link to upstream " + address_ + " is down");
    return;
  }
  send(argv, new ReplyFn(std::move(fn)));
}

void ControlLink::on_reply_cb(redisAsyncContext* ac, void* reply, void* privdata) {
  auto* fn = static_cast<ReplyFn*>(privdata);
  ControlLink* self = ac ? owner(ac) : nullptr;
  std::string err;
  if (!reply) err = "control link to upstream " + (self ? self->address_ : std::string("?")) + " lost";
  if (reply) {
    resp::Value v = to_value(static_cast<const redisReply*>(reply));
    (*fn)(&v, err);
  } else {
    (*fn)(nullptr, err);
  }
  delete fn;
}

void ControlLink::role(std::function<void(bool, uint64_t, const std::string&)> fn) {
  command({"ROLE"}, [fn = std::move(fn)](const resp::Value* r, const std::string& err) {
    if (!r) return fn(false, 0, err);
    if (r->type != resp::Value::Type::array || r->elems.size() < 2 || r->elems[0].type != resp::Value::Type::bulk)
      return fn(false, 0, "unexpected ROLE reply from upstream");
    const std::string& role = r->elems[0].str;
    const resp::Value* off = nullptr;
    if (role == "master" || role == "primary") off = &r->elems[1];
    else if ((role == "slave" || role == "replica") && r->elems.size() >= 5) off = &r->elems[4];
    if (!off || off->type != resp::Value::Type::integer)
      return fn(false, 0, "ROLE reply from upstream has no offset (role " + role + ")");
    fn(true, static_cast<uint64_t>(off->integer < 0 ? 0 : off->integer), "");
  });
}

void ControlLink::close(std::function<void()> on_closed) {
  if (!life_.begin_close(std::move(on_closed))) return;
  uv_timer_stop(&timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), [](uv_handle_t* h) {
    auto* self = static_cast<ControlLink*>(h->data);
    self->timer_closed_ = true;
    self->finish_close();
  });
  if (ac_) redisAsyncDisconnect(ac_);  // -> on_disconnect_cb -> lost() -> finish_close()
}

}  // namespace dp::upstream
