#!/usr/bin/env bash
# Cluster crash soak: rounds of kill -9 (node, proxy, both) and failovers
# on a 3+3 Valkey Cluster with a proxy per node, under writers over every
# slot; prints what each failover lost and the totals.
# Usage: tests/crash/cluster_soak.sh [rounds] [--seed N] [--failover-every K]
#        [--writers N] [--server <valkey-server 8.x or 9.x>]
# DP_BINARY picks the proxy binary (default build/durable-proxy);
# DP_SERVER_BIN (or --server) the server (default: Valkey 8.0.1).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
export DP_BINARY=${DP_BINARY:-$root/build/durable-proxy}
export DP_SOURCE_DIR=$root
export DP_SERVER_BIN=${DP_SERVER_BIN:-$(command -v valkey-server || echo valkey-server)}
ulimit -n 65536 2>/dev/null || true
exec /usr/bin/python3 "$root/tests/crash/cluster_soak.py" "$@"
