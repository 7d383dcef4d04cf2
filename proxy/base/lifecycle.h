// The {open, closing, closed} life of a loop object that owns libuv handles
// (STYLE.md: close() is idempotent, the owner is freed only once every
// handle's close callback ran), with the callbacks waiting for the end.
//
//   void X::close(std::function<void()> on_closed) {
//     if (!life_.begin_close(std::move(on_closed))) return;  // not the first call
//     ... uv_close every handle ...
//   }
//   ... last close callback:  life_.finish();   // may free X: return at once
//
// Loop thread only.
#pragma once

#include <functional>
#include <utility>
#include <vector>

namespace dp {

class Lifecycle {
 public:
  bool open() const { return state_ == State::open; }
  bool closing() const { return state_ == State::closing; }
  bool closed() const { return state_ == State::closed; }

  // Queues `on_closed` (or runs it now when already closed).  True only for
  // the first call, whose caller must then start closing its handles.
  bool begin_close(std::function<void()> on_closed) {
    if (state_ == State::closed) {
      if (on_closed) on_closed();
      return false;
    }
    if (on_closed) waiters_.push_back(std::move(on_closed));
    if (state_ == State::closing) return false;
    state_ = State::closing;
    return true;
  }

  // Every handle is closed: runs the waiting callbacks.  One of them may
  // destroy the owner (and this object): nothing here is touched after.
  void finish() {
    state_ = State::closed;
    std::vector<std::function<void()>> waiters = std::move(waiters_);
    waiters_.clear();
    for (auto& cb : waiters) cb();
  }

 private:
  enum class State { open, closing, closed } state_ = State::open;
  std::vector<std::function<void()>> waiters_;
};

}  // namespace dp
