// `durable-proxy --checkpoint`: asks a running proxy for a checkpoint with
// one POST /checkpoint on its admin port (admin.address, or --admin), with
// the admin token when one is configured, and reports the answer.
//
// Threads: main thread; blocking sockets with timeouts, no libuv.
#pragma once

#include <string>

#include "config/config.h"

namespace dp {

// Exit codes of --checkpoint: started (202), refused (409 busy, 503 not
// ready, 401 bad token, any other answer), or no answer at all.
enum CheckpointCommandExit { kCheckpointStarted = 0, kCheckpointRefused = 1, kCheckpointNoAnswer = 2 };

// Sends the request; *output gets one human line: the HTTP status and the
// proxy's message, or what failed (address and cause).
int request_checkpoint(const config::Config& cfg, std::string* output, int timeout_ms = 10000);

}  // namespace dp
