#!/usr/bin/env bash
# Crash soak: hundreds of kill -9 / power-loss rounds under writer load,
# then prints the totals.  Usage: tests/crash/soak.sh [rounds] [--seed N]
# [--verify-every N] [--big-keys 1000000] [--server <server binary>]
# DP_BINARY picks the proxy binary (default build/durable-proxy);
# DP_SERVER_BIN (or --server) the upstream (default redis-server).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
export DP_BINARY=${DP_BINARY:-$root/build/durable-proxy}
export DP_BUILD_DIR=${DP_BUILD_DIR:-$(dirname "$DP_BINARY")}
export DP_SOURCE_DIR=$root
ulimit -n 65536 2>/dev/null || true
exec /usr/bin/python3 "$root/tests/crash/soak.py" "$@"
