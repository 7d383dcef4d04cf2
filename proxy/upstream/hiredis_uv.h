// Attaches a hiredis async context to a libuv loop, like hiredis's own
// adapters/libuv.h but with poll errors handled: the adapter shipped with
// hiredis 0.14 (Debian bookworm) ignores a poll callback with an error
// status, and libuv stops the poll handle on POLLERR, so a connection reset
// by the peer (e.g. the upstream killed with unread data in its socket) was
// never noticed: queued commands stayed unsent and no disconnect callback
// ran.  Here an error status makes hiredis read the socket, which reports
// the error and disconnects the context.
//
// Loop thread only.  The adapter state is freed after the context is freed
// (hiredis's cleanup hook closes the poll handle).
#pragma once

#include <uv.h>

struct redisAsyncContext;

namespace dp::upstream {

// Returns 0 (REDIS_OK) or -1 (already attached, or the fd cannot be polled).
int attach_hiredis_to_uv(redisAsyncContext* ac, uv_loop_t* loop);

}  // namespace dp::upstream
