#!/usr/bin/env bash
# Time to restore N keys (checkpoint + log tail) vs the same redis-server
# reloading its own AOF with the same data; prints the ratio.
# Usage: tests/bench/restore_bench.sh [keys]   (default 1000000)
# DP_SERVER_BIN picks the upstream server (default redis-server), DP_BINARY
# the proxy binary (default build/durable-proxy).  Needs a
# quiet machine (uptime load < 1.5) for meaningful figures.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
export DP_BINARY=${DP_BINARY:-$root/build/durable-proxy}
export DP_BUILD_DIR=${DP_BUILD_DIR:-$(dirname "$DP_BINARY")}
export DP_SOURCE_DIR=$root
echo "load: $(uptime)"
exec /usr/bin/python3 "$root/tests/bench/restore_bench.py" "$@"
