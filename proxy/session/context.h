// What every session shares: configuration, the command table, the gate,
// metrics and the proxy's serving state.  Owned by Proxy; outlives every
// session.  Loop thread only.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "config/config.h"
#include "proxy/base/byte_buffer.h"
#include "proxy/commands/command_table.h"
#include "proxy/gate/durability_gate.h"
#include "proxy/resp/request_parser.h"

namespace dp {

namespace admin {
class Metrics;
}
class Session;
class SharedPool;

struct ProxyContext {
  uv_loop_t* loop = nullptr;
  const config::Config* cfg = nullptr;
  std::shared_ptr<const commands::CommandTable> table;  // replaced when the upstream changes
  gate::DurabilityGate* gate = nullptr;                  // null with durability off
  admin::Metrics* metrics = nullptr;
  resp::RequestLimits limits;

  sockaddr_storage upstream_addr{};  // resolved once at start
  std::string upstream_name;         // "host:port" for messages

  // Serving state: while false, every command is answered with
  // "-LOADING <not_serving>" (start-up, restore) or "-ERR ..." (log failed).
  bool serving = false;
  std::string not_serving;     // the error line sent instead, without '-' and CRLF
  bool log_failed = false;     // writes answered with an error
  std::string log_failure;

  uint64_t now_ms = 0;         // loop time, refreshed each turn

  // Held-reply bytes over every session, and the bound on them.
  uint64_t total_held_bytes = 0;
  uint64_t clients = 0;
  // The log's unsynced stream bytes passed durability.max_unsynced: the
  // replica link is paused and sessions with writes in flight stop reading
  // requests, so the upstream's replica buffer for the proxy stops growing.
  bool stream_lagging = false;

  // Shared read buffer: libuv reads one stream at a time, so sessions read
  // into it and copy only the unparsed remainder into their own buffer.
  char* read_buf = nullptr;
  size_t read_buf_size = 0;
  bool read_buf_busy = false;

  // Shared upstream connections (upstream.sharing: auto); null when off.
  SharedPool* shared_pool = nullptr;
  // The run_id of the upstream process the control link last checked
  // (INFO server), cleared when the control link drops.  A shared
  // connection's ROLE answers count for the gate only while it reached
  // this same process and the proxy is serving: a restarted upstream's
  // small offsets must never release a reply.
  std::string upstream_run_id;
  // The recovery state is `serving`: the upstream's offsets are those of
  // the history the log follows (a probe answer counts only then).
  bool offsets_follow_log = false;

  std::function<std::string()> info_durability;  // body of INFO durability
  std::function<void(Session*)> session_closed;  // unregister before delete
  std::function<void()> held_bytes_dropped;      // total fell below the bound
};

// A libuv alloc callback's buffer: the shared read buffer when `own` holds
// no unparsed bytes and nobody else is using it, else room in `own`.
inline void alloc_read_buffer(ProxyContext* ctx, ByteBuffer* own, uv_buf_t* buf) {
  constexpr size_t kReadChunk = 64 * 1024;
  if (own->empty() && !ctx->read_buf_busy) {
    ctx->read_buf_busy = true;
    *buf = uv_buf_init(ctx->read_buf, static_cast<unsigned>(ctx->read_buf_size));
    return;
  }
  char* room = own->prepare(kReadChunk);  // before writable(): argument order is unspecified
  *buf = uv_buf_init(room, static_cast<unsigned>(own->writable()));
}

}  // namespace dp
