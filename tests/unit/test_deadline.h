// Deadlines for unit tests.  A test waits on a condition, never on a fixed
// time: wait_until() polls a predicate until it holds or a deadline passes.
// Every deadline is scaled by $DP_TEST_TIME_SCALE (a factor, default 1; the
// integration harness reads the same variable), so a slow or loaded machine
// can be given more time without editing tests.  On giving up, the helper
// prints what it was waiting for, how long it waited and the last state the
// caller's state() function reported, so a red run says why.
#pragma once

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <string_view>
#include <thread>

namespace dp::test {

// The default wait: long enough for a full sync on a loaded two-core machine.
inline constexpr std::chrono::milliseconds kDefaultWait{10000};

// $DP_TEST_TIME_SCALE as a positive factor (unset, empty or invalid: 1).
inline double time_scale() {
  const char* s = std::getenv("DP_TEST_TIME_SCALE");
  if (s == nullptr || *s == '\0') return 1.0;
  char* end = nullptr;
  double v = std::strtod(s, &end);
  return (end != s && v > 0) ? v : 1.0;
}

inline std::chrono::milliseconds scaled(std::chrono::milliseconds d) {
  return std::chrono::milliseconds(static_cast<long long>(static_cast<double>(d.count()) * time_scale()));
}

// A point in time `scaled(d)` from now.
class Deadline {
 public:
  explicit Deadline(std::chrono::milliseconds d = kDefaultWait)
      : limit_(scaled(d)), end_(std::chrono::steady_clock::now() + limit_) {}
  bool expired() const { return std::chrono::steady_clock::now() > end_; }
  std::chrono::milliseconds limit() const { return limit_; }

 private:
  std::chrono::milliseconds limit_;
  std::chrono::steady_clock::time_point end_;
};

// Prints "gave up after N ms waiting for <what>; last state: <state()>" to stderr.
inline void report_gave_up(std::string_view what, std::chrono::milliseconds waited,
                           const std::function<std::string()>& state) {
  std::string last = state ? "; last state: " + state() : std::string();
  std::fprintf(stderr, "test deadline: gave up after %lld ms waiting for %.*s%s\n",
               static_cast<long long>(waited.count()), static_cast<int>(what.size()), what.data(),
               last.c_str());
}

// Runs step() until done() holds: true, or false after the scaled timeout,
// with the report above.  The one polling loop of the tests.
inline bool poll_until(const std::function<bool()>& done, const std::function<void()>& step, std::string_view what,
                       std::chrono::milliseconds timeout, const std::function<std::string()>& state) {
  Deadline deadline(timeout);
  while (!done()) {
    if (deadline.expired()) {
      report_gave_up(what, deadline.limit(), state);
      return false;
    }
    step();
  }
  return true;
}

// Polls done() (every millisecond; for conditions another thread or process
// makes true) until it holds: true, or false after the scaled timeout, with
// the report above.
inline bool wait_until(const std::function<bool()>& done, std::string_view what,
                       std::chrono::milliseconds timeout = kDefaultWait,
                       const std::function<std::string()>& state = {}) {
  return poll_until(done, [] { std::this_thread::sleep_for(std::chrono::milliseconds(1)); }, what, timeout, state);
}

}  // namespace dp::test
