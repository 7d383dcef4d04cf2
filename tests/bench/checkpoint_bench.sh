#!/usr/bin/env bash
# Checkpoint benchmark (issue 6): checkpoint duration and client latency
# with and without a checkpoint running, on a dataset of --keys keys
# (default 1M).  Not part of the test suite: run it on a quiet machine.
#
#   tests/bench/checkpoint_bench.sh [--keys N] [--rounds N] [--seconds S]
#
# Environment: DP_BINARY (default build/durable-proxy); DP_SERVER_BIN, the
# upstream server (default redis-server).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
binary=${DP_BINARY:-$root/build/durable-proxy}
[ -x "$binary" ] || { echo "checkpoint_bench: proxy binary $binary missing (build it or set DP_BINARY)" >&2; exit 2; }
server=${DP_SERVER_BIN:-redis-server}
command -v "$server" >/dev/null || { echo "checkpoint_bench: upstream server $server not found (DP_SERVER_BIN; deploy/setup-valkey.sh --print lists them)" >&2; exit 2; }
exec /usr/bin/python3 "$root/tests/bench/checkpoint_bench.py" --proxy "$binary" "$@"
