#!/usr/bin/env bash
# Sets everything up, builds, starts a local upstream with persistence off on
# 127.0.0.1:6379 when nothing listens there, and runs the proxy on
# 127.0.0.1:7379 in the foreground with ./proxy.yaml.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/deploy/setup-debian.sh"
"$root/deploy/build.sh"
upstream_pid=""
if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  server=$(command -v valkey-server || command -v redis-server)
  mkdir -p "$root/data/upstream"
  echo "quickstart: starting $server on 127.0.0.1:6379 (persistence off)" >&2
  "$server" "$root/deploy/valkey.conf" --port 6379 --bind 127.0.0.1 \
      --dir "$root/data/upstream" --daemonize no >"$root/data/upstream/server.log" 2>&1 &
  upstream_pid=$!
  trap '[ -n "$upstream_pid" ] && kill "$upstream_pid" 2>/dev/null' EXIT
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null && break; sleep 0.1; done
fi
cd "$root"
"$root/build/durable-proxy" --config "$root/proxy.yaml" "$@"
