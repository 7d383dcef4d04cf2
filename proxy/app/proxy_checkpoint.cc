// The proxy's side of checkpoints: builds the Checkpointer from the config
// and answers POST /checkpoint.  The checkpointer itself: proxy/checkpoint/checkpointer.h.
#include "proxy/app/proxy.h"

namespace dp {

std::unique_ptr<Checkpointer> Proxy::make_checkpointer() {
  CheckpointerOptions co;
  co.link.host = cfg_.upstream.host;
  co.link.port = cfg_.upstream.port;
  co.link.username = cfg_.upstream_username;
  co.link.password = cfg_.upstream_password;
  co.link.connect_timeout_ms = cfg_.connect_timeout_ms;
  co.policy.max_log_bytes = cfg_.checkpoint_max_log_bytes;
  co.policy.interval_ms = uint64_t(cfg_.checkpoint_interval_s) * 1000;
  return std::make_unique<Checkpointer>(&loop_, co, log_.get(), checkpoints_.get(), &metrics_,
                                        [this](std::string* why) { return ready(why); });
}

admin::CheckpointAnswer Proxy::checkpoint_request(std::string* message) {
  if (!checkpointer_) {
    *message = "not available: checkpoints need durability.mode always (the proxy keeps no log)";
    return admin::CheckpointAnswer::not_ready;
  }
  switch (checkpointer_->request("admin request POST /checkpoint", message)) {
    case Checkpointer::Answer::started: return admin::CheckpointAnswer::started;
    case Checkpointer::Answer::busy: return admin::CheckpointAnswer::refused;
    case Checkpointer::Answer::not_ready: return admin::CheckpointAnswer::not_ready;
  }
  return admin::CheckpointAnswer::refused;
}

}  // namespace dp
