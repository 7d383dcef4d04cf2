#!/bin/sh
# A local Valkey Cluster (3 primaries, 3 replicas) on loopback with a
# durable-proxy beside each node: proxies on 7001-7006 (admin 9001-9006),
# nodes on free ports, each node announcing its proxy.  Ctrl-C stops it.
#   deploy/cluster/local.sh [--server PATH/valkey-server] [--proxy-port 7001] [--dir DIR]
# Needs the build (deploy/build.sh) and a Valkey 8.x or 9.x valkey-server
# (default: the one on PATH; deploy/setup-valkey.sh --print lists them).
# The same code the cluster tests use: tests/integration/cluster_util.py.
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
: "${DP_BINARY:=$here/build/durable-proxy}"
if [ ! -x "$DP_BINARY" ]; then
  echo "local.sh: $DP_BINARY missing: run deploy/build.sh first (or set DP_BINARY)" >&2
  exit 1
fi
python=python3
[ -x /usr/bin/python3 ] && python=/usr/bin/python3
DP_BINARY=$DP_BINARY DP_SERVER_BIN=${DP_SERVER_BIN:-valkey-server} \
  exec "$python" "$here/tests/integration/cluster_util.py" "$@"
