#!/usr/bin/env bash
# Sets up the cluster-client tests (tests/integration/test_cluster_clients.py):
# Node.js and npm (Debian's packages, unless node and npm are already on the
# PATH: Debian's npm would replace a Node.js installed another way), then the
# packages tests/clients/package-lock.json pins (node_modules is not in git).
# npm ci is skipped while node_modules holds what this lock file installed.
# Run by tests/run-all.sh; not part of the quick start.  Uses sudo when not root.
set -euo pipefail
clients=$(cd "$(dirname "$0")" && pwd)
if ! { command -v node && command -v npm; } >/dev/null; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "setup: installing nodejs npm (cluster-client tests)" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
if ! cmp -s "$clients/package-lock.json" "$clients/node_modules/.installed-package-lock.json"; then
  echo "setup: npm ci in tests/clients" >&2
  (cd "$clients" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$clients/package-lock.json" "$clients/node_modules/.installed-package-lock.json"
fi
