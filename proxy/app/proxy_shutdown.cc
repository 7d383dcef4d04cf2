// Shutdown: signals, draining held replies within shutdown.timeout, then
// closing every handle so the loop ends.  Once per Proxy (shutdown_).
#include <csignal>

#include "proxy/app/proxy.h"
#include "proxy/base/logger.h"
#include "proxy/session/session.h"

namespace dp {

void Proxy::on_signal(uv_signal_t* s, int signum) {
  auto* self = static_cast<Proxy*>(s->data);
  if (signum == SIGHUP) {
    std::string error;
    if (logger_reopen(&error)) LOG_INFO("proxy", "SIGHUP: log output reopened");
    else LOG_ERROR("proxy", "SIGHUP: %s; still writing to the old file", error.c_str());
    return;
  }
  self->begin_shutdown(signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

void Proxy::begin_shutdown(const char* why) {
  if (stopping()) {
    finish_shutdown();  // second signal: stop now
    return;
  }
  LOG_INFO("proxy", "%s: stopping; delivering held replies (up to %u ms)", why, cfg_.shutdown_timeout_ms);
  shutdown_ = Shutdown::draining;
  ctx_.serving = false;
  ctx_.not_serving = "LOADING durable-proxy is shutting down";
  if (listening_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
    listening_ = false;
  }
  shutdown_deadline_ = uv_now(&loop_) + cfg_.shutdown_timeout_ms;
  std::vector<Session*> all;
  for (auto& [id, s] : sessions_) all.push_back(s);
  for (Session* s : all) s->drain();
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&tick_))) finish_shutdown();
}

void Proxy::finish_shutdown() {
  if (shutdown_ == Shutdown::closed) return;
  shutdown_ = Shutdown::closed;
  std::vector<Session*> all;
  for (auto& [id, s] : sessions_) all.push_back(s);
  if (!all.empty()) LOG_WARN("proxy", "closing %zu clients with replies still due", all.size());
  for (Session* s : all) s->close("shutdown");
  close_all_handles();
}

void Proxy::close_all_handles() {
  auto close_h = [](auto* h) {
    auto* uh = reinterpret_cast<uv_handle_t*>(h);
    if (uh->loop && !uv_is_closing(uh)) uv_close(uh, nullptr);
  };
  if (listening_) {
    close_h(&listener_);
    listening_ = false;
  }
  close_h(&tick_);
  close_h(&check_);
  close_h(&durable_async_);
  close_h(&sigterm_);
  close_h(&sigint_);
  close_h(&sighup_);
  if (shared_pool_) shared_pool_->close_all("shutdown");
  if (restorer_) restorer_->close(nullptr);
  if (checkpointer_) checkpointer_->close(nullptr);
  if (link_) link_->close(nullptr);
  if (control_) control_->close(nullptr);
  if (admin_) admin_->close(nullptr);
}

}  // namespace dp
