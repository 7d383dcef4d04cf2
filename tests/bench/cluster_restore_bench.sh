#!/usr/bin/env bash
# Cluster restore benchmark (issue 14): restore time of a cluster primary
# through its proxy (DEBUG LOADAOF of the log) against an AOF reload of the
# same node.  Details: tests/bench/cluster_restore_bench.py.
#
#   tests/bench/cluster_restore_bench.sh [--keys N]
#
# Environment: DP_BINARY (default build/durable-proxy), DP_SERVER_BIN (a
# valkey-server; default the one on PATH).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
export DP_BINARY=${DP_BINARY:-$root/build/durable-proxy}
[ -x "$DP_BINARY" ] || { echo "cluster_restore_bench: proxy binary $DP_BINARY missing (build it or set DP_BINARY)" >&2; exit 2; }
export DP_SERVER_BIN=${DP_SERVER_BIN:-$(command -v valkey-server || true)}
[ -n "$DP_SERVER_BIN" ] || { echo "cluster_restore_bench: valkey-server not found (deploy/setup-valkey.sh)" >&2; exit 2; }
exec /usr/bin/python3 "$root/tests/bench/cluster_restore_bench.py" "$@"
