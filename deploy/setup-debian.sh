#!/usr/bin/env bash
# Installs everything durable-proxy needs to build, run and test on Debian
# bookworm (or newer).  Idempotent; uses sudo when not root.
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config clang libclang-rt-dev
      libuv1-dev libhiredis-dev doctest-dev libyaml-cpp-dev node-llhttp
      redis-server redis-tools python3 python3-redis python3-pytest
      prometheus yamllint)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts a system redis on 6379 at install; the project starts its own.
  if command -v systemctl >/dev/null && systemctl is-active -q redis-server 2>/dev/null; then
    $sudo systemctl stop redis-server || true
  fi
fi
# The quick start's default upstream: Valkey 8.0.1 from bookworm-backports.
"$(dirname "$0")/setup-valkey.sh" 8.0.1
