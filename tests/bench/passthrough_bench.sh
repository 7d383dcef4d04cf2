#!/usr/bin/env bash
# Pass-through benchmark (issue 3): redis-benchmark -t set,get -r 100000 -d 64
# at c50 P1, c50 P16 and c1 P1, straight at a redis-server and through
# durable-proxy (durability off), in one run, several rounds, medians and
# ratios; the c1 p50 latency overhead in microseconds (tests/tools/
# latency_probe); and the proxy's resident-memory cost of 5,000 idle client
# connections.  Not part of the test suite: run it on a quiet machine.
#
#   tests/bench/passthrough_bench.sh [--rounds N] [--requests N]
#                                    [--c1-requests N] [--idle N]
#
# Environment: DP_SERVER_BIN (upstream server, default redis-server),
# DP_BINARY (default build/durable-proxy), DP_BUILD_DIR (where
# tests/latency_probe was built; compiled on the fly otherwise).
# Targets on a 2-core machine: proxy >= 0.8x direct throughput at c50 P1 and
# P16; c1 p50 overhead <= 40 us; 5,000 idle connections <= 64 MB RSS.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
binary=${DP_BINARY:-$root/build/durable-proxy}
[ -x "$binary" ] || { echo "passthrough_bench: proxy binary $binary missing (build it or set DP_BINARY)" >&2; exit 2; }
for tool in "${DP_SERVER_BIN:-redis-server}" redis-benchmark; do
  command -v "$tool" >/dev/null || { echo "passthrough_bench: $tool not found (apt-get install redis-server redis-tools)" >&2; exit 2; }
done
# Idle connections need descriptors here, in redis-server and in the proxy
# (two per client): raise the soft limit to the hard one before starting.
hard=$(ulimit -Hn)
ulimit -n "$hard" 2>/dev/null || echo "passthrough_bench: could not raise the open-file limit to $hard" >&2
exec /usr/bin/python3 "$root/tests/bench/passthrough_bench.py" --proxy "$binary" "$@"
