// How sessions feed the metric table (proxy/admin/metrics.h): command
// classes and hold kinds.  Header-only glue so session.cc stays about
// framing; every function accepts a null Metrics (unit tests, tools).
// Loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>

#include "proxy/admin/metrics.h"
#include "proxy/commands/classification.h"

namespace dp {

// A command counted once the session handled it: by its table class when it
// was forwarded, as "proxy" when the proxy answered it itself (INFO
// durability, WAITAOF, CLIENT REPLY, LOADING while not serving...).
inline void count_command(admin::Metrics* m, bool forwarded, commands::Kind kind) {
  if (!m) return;
  admin::CommandClass c = admin::CommandClass::proxy;
  if (forwarded) {
    switch (kind) {
      case commands::Kind::read: c = admin::CommandClass::read; break;
      case commands::Kind::write: c = admin::CommandClass::write; break;
      case commands::Kind::keyspace_read: c = admin::CommandClass::keyspace_read; break;
      case commands::Kind::other: c = admin::CommandClass::other; break;
    }
  }
  m->inc(admin::Metric::commands_total, c);
}

// A held reply left the queue after `since_ns` (uv_hrtime at queueing).
// `failed`: it was answered with an error because it did not become
// durable in time (or the log failed, `log_failed`).
inline void count_release(admin::Metrics* m, admin::HoldKind kind, uint64_t since_ns, bool failed, bool log_failed) {
  if (!m) return;
  if (failed) {
    if (!log_failed) {
      m->inc(admin::Metric::hold_timeouts_total);
      m->inc(admin::Metric::errors_total, admin::ErrorCause::hold_timeout);
    }
    return;
  }
  m->observe(admin::Metric::hold_seconds, kind, static_cast<double>(uv_hrtime() - since_ns) / 1e9);
}

inline void count_error(admin::Metrics* m, admin::ErrorCause cause) {
  if (m) m->inc(admin::Metric::errors_total, cause);
}

}  // namespace dp
