#!/usr/bin/env bash
# Checkpoint benchmark (issue 6): checkpoint duration and client latency
# with and without a checkpoint running, on a dataset of --keys keys
# (default 1M).  Not part of the test suite: run it on a quiet machine.
#
#   tests/bench/checkpoint_bench.sh [--keys N] [--rounds N] [--seconds S]
#
# Environment: DP_BINARY (default build/durable-proxy).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
binary=${DP_BINARY:-$root/build/durable-proxy}
[ -x "$binary" ] || { echo "checkpoint_bench: proxy binary $binary missing (build it or set DP_BINARY)" >&2; exit 2; }
command -v redis-server >/dev/null || { echo "checkpoint_bench: redis-server not found (apt-get install redis-server)" >&2; exit 2; }
exec /usr/bin/python3 "$root/tests/bench/checkpoint_bench.py" --proxy "$binary" "$@"
