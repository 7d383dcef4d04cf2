#!/usr/bin/env bash
# Durability benchmark (issue 5): what `durability: always` costs, side by
# side in one run, on three targets:
#   durable  - redis-server with persistence off behind durable-proxy
#              (--durability always);
#   always   - the same redis-server build with appendonly yes,
#              appendfsync always, clients direct;
#   ceiling  - a redis-server with persistence off, clients direct.
# Workloads: redis-benchmark SET c50 P1, SET c50 P16, SET c1 P1 (rps,
# p50, p99), and the valkey #4029 workload: 8 background clients SET while
# 50 clients GET other keys (GET rps and p99).  Two disk modes: this
# machine's disk as is, and every fdatasync of the proxy and of the
# `always` server delayed by 2 ms through tests/tools/libfsyncshim.c
# (DP_FSYNC_DELAY_US), which is what network disks in the cloud cost.
# Several rounds, interleaved; medians and ratios; targets checked.
# Not part of the test suite: run it on a quiet machine (load < 1.5).
#
#   tests/bench/durability_bench.sh [--rounds N] [--requests N]
#        [--c1-requests N] [--get-requests N] [--modes local,delay]
#        [--delay-us N] [--workloads 'SET c50 P1,...'] [--compare-overlap N]
#        [--compare-sharing] [--baseline-proxy PATH]
#
# --compare-overlap 1 adds a target durable-o1: the same proxy with
# log.fsync_overlap 1 (one fsync at a time), to see what overlapping buys.
# --compare-sharing adds durable-shared (upstream.sharing: auto);
# --baseline-proxy PATH adds shared-baseline: another build (say the
# previous commit's) with sharing on, to measure a change side by side.
#
# Environment: DP_BINARY (default build/durable-proxy), DP_BUILD_DIR (where
# tests/libfsyncshim.so was built; compiled on the fly otherwise),
# DP_BENCH_QUICK=1 for a short validation run (1 round, few requests).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
binary=${DP_BINARY:-$root/build/durable-proxy}
[ -x "$binary" ] || { echo "durability_bench: proxy binary $binary missing (build it or set DP_BINARY)" >&2; exit 2; }
for tool in "${DP_SERVER_BIN:-redis-server}" redis-benchmark gcc; do
  command -v "$tool" >/dev/null || { echo "durability_bench: $tool not found (apt-get install redis-server redis-tools gcc)" >&2; exit 2; }
done
exec /usr/bin/python3 "$root/tests/bench/durability_bench.py" --proxy "$binary" "$@"
