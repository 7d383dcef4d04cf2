#!/usr/bin/env bash
# Installs and builds the upstream servers the tests run against, once per
# machine (idempotent, progress on stderr):
#   - Valkey 8.0.1   binary package valkey-server from bookworm-backports;
#   - Valkey 8.1.1   Debian source package (trixie), built with make;
#   - Valkey 9.1.2   Debian source package (sid), built with make;
#   - Redis 7.0.15   redis-server from bookworm (installed by setup-debian.sh).
# The archive's URL is read from this machine's own apt sources.  The extra
# suites go to /etc/apt/sources.list.d/durable-proxy-valkey.sources (only
# bookworm-backports as binaries; trixie and sid as deb-src only, so nothing
# else on the machine changes).  Built servers land in
# ${DP_CACHE_DIR:-$HOME/.cache/durable-proxy}/valkey-<version>/ and are never
# part of the repository.
#
#   deploy/setup-valkey.sh            all versions
#   deploy/setup-valkey.sh 9.1.2      one source version (8.1.1 or 9.1.2)
#   deploy/setup-valkey.sh --print    print "name version path" per server
set -euo pipefail
cache=${DP_CACHE_DIR:-$HOME/.cache/durable-proxy}
sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
say() { echo "setup-valkey: $*" >&2; }

declare -A suite_of=([8.0.1]=bookworm-backports [8.1.1]=trixie [9.1.2]=sid)

server_version() {  # prints e.g. "valkey 8.0.1" for a server binary
  "$1" --version 2>/dev/null | sed -n 's/^\(Valkey\|Redis\) server v=\([0-9.]*\).*/\1 \2/p' |
    tr '[:upper:]' '[:lower:]'
}

if [ "${1:-}" = --print ]; then
  for b in /usr/bin/redis-server /usr/bin/valkey-server "$cache"/valkey-*/bin/valkey-server; do
    [ -x "$b" ] || continue
    v=$(server_version "$b"); [ -n "$v" ] && echo "$v $b"
  done
  exit 0
fi

archive_url() {  # the Debian archive this machine already uses
  local u
  u=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' |
      grep -v -- '-security' | head -1)
  [ -n "$u" ] || u=$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
      awk '{print $2}' | grep -v -- '-security' | head -1)
  [ -n "$u" ] || { say "no Debian archive found in /etc/apt sources"; exit 1; }
  echo "$u"
}

sources=/etc/apt/sources.list.d/durable-proxy-valkey.sources
ensure_sources() {
  local url want
  url=$(archive_url)
  want="# Written by durable-proxy deploy/setup-valkey.sh: valkey-server from
# bookworm-backports, and Valkey source packages of trixie and sid.
Types: deb
URIs: $url
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: $url
Suites: bookworm-backports trixie sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"
  if [ "$(cat "$sources" 2>/dev/null)" != "$(printf '%s' "$want")" ]; then
    say "writing $sources (archive $url)"
    printf '%s' "$want" | $sudo tee "$sources" >/dev/null
    $sudo apt-get update -qq
  fi
}

install_800() {
  if [ "$(server_version /usr/bin/valkey-server 2>/dev/null)" = "valkey 8.0.1" ]; then return; fi
  say "installing valkey-server 8.0.1 from bookworm-backports"
  $sudo apt-get install -y -qq --no-install-recommends -t bookworm-backports \
      valkey-server valkey-tools >/dev/null
  # The package starts a system valkey on 6379; the project starts its own.
  if command -v systemctl >/dev/null && systemctl is-active -q valkey-server 2>/dev/null; then
    $sudo systemctl stop valkey-server || true
    $sudo systemctl disable valkey-server 2>/dev/null || true
  fi
  pkill -x valkey-server 2>/dev/null || true
}

source_800() {  # Valkey's Tcl test tree for tests/valkey-suite.sh (not built)
  [ -d "$cache/valkey-8.0.1/source/tests" ] && return
  $sudo apt-get install -y -qq --no-install-recommends dpkg-dev tcl >/dev/null
  mkdir -p "$cache/src" "$cache/valkey-8.0.1"
  local src
  src=$(find "$cache/src" -maxdepth 1 -type d -name "valkey-8.0.1*" | head -1)
  if [ -z "$src" ]; then
    # Optional: without it the Valkey suite skips 8.0.1 and says so.
    (fetch_source 8.0.1) || { say "valkey 8.0.1: no test tree (the suite will skip 8.0.1)"; return 0; }
    src=$(find "$cache/src" -maxdepth 1 -type d -name "valkey-8.0.1*" | head -1)
  fi
  ln -sfn "$src" "$cache/valkey-8.0.1/source"
}

fetch_source() {  # $1 = upstream version; unpacks into $cache/src
  local ver=$1 full
  full=$(apt-cache showsrc valkey | awk -v v="$ver" '$1=="Version:" && index($2, v)==1 {print $2; exit}')
  [ -n "$full" ] || { say "valkey $ver: not in the deb-src index (apt-cache showsrc valkey)"; exit 1; }
  say "fetching the source of valkey $full (${suite_of[$ver]})"
  if (cd "$cache/src" && apt-get source -qq --only-source --download-only "valkey=$full" >/dev/null 2>&1); then
    (cd "$cache/src" && dpkg-source -x --no-check ./valkey_"$full".dsc >/dev/null)
    return
  fi
  # A mirror can lag its own index (a newer Debian revision listed, its
  # files not there yet).  The upstream tarball is the same for every
  # revision: fetch it by the URI and SHA256 the signed index gives, and
  # build it without Debian's packaging patches.
  say "valkey $full: the mirror lacks this revision's files; using its upstream tarball"
  local line uri name sum
  local tmp; tmp=$(mktemp -d)
  line=$(cd "$tmp" && apt-get source --print-uris --only-source "valkey=$full" 2>/dev/null |
         grep -E "\.orig\.tar\.[a-z]+' " | head -1)
  rmdir "$tmp"
  uri=$(echo "$line" | awk '{print $1}' | tr -d "'"); name=$(echo "$line" | awk '{print $2}')
  sum=$(echo "$line" | awk '{print $4}' | sed 's/^SHA256://')
  [ -n "$uri" ] || { say "valkey $full: no upstream tarball in the index"; exit 1; }
  (cd "$cache/src" && curl -fsS -o "$name" "$uri" &&
   echo "$sum  $name" | sha256sum -c --quiet - &&
   tar xf "$name") || { say "valkey $full: download or checksum of $uri failed"; exit 1; }
}

build_source() {  # $1 = version
  local ver=$1 dest="$cache/valkey-$1" src t0
  if [ -x "$dest/bin/valkey-server" ] && [ "$(server_version "$dest/bin/valkey-server")" = "valkey $ver" ]; then
    return
  fi
  t0=$(date +%s)
  $sudo apt-get install -y -qq --no-install-recommends dpkg-dev tcl \
      liblzf-dev liblua5.1-dev lua-bitop-dev lua-cjson-dev libhiredis-dev \
      libjemalloc-dev libssl-dev libsystemd-dev >/dev/null
  mkdir -p "$cache/src"
  src=$(find "$cache/src" -maxdepth 1 -type d -name "valkey-${ver%%+*}*" | head -1)
  if [ -z "$src" ]; then
    fetch_source "$ver"
    src=$(find "$cache/src" -maxdepth 1 -type d -name "valkey-${ver%%+*}*" | head -1)
  fi
  [ -n "$src" ] || { say "valkey $ver: no source package found (apt-cache showsrc valkey)"; exit 1; }
  say "building valkey $ver in $src (make, about 2-4 minutes on 2 cores)"
  local opts=(BUILD_TLS=no USE_SYSTEMD=no)
  # The +dfsg source has no deps/ tree: link Debian's system libraries.
  if [ ! -d "$src/deps/lua" ]; then
    opts+=(USE_SYSTEM_LUA=yes USE_SYSTEM_HIREDIS=yes USE_SYSTEM_JEMALLOC=yes USE_SYSTEM_LIBLZF=yes)
  fi
  (cd "$src" && make -j"$(nproc)" "${opts[@]}" >"$cache/build-$ver.log" 2>&1) ||
    { say "valkey $ver: make failed, see $cache/build-$ver.log"; tail -30 "$cache/build-$ver.log" >&2; exit 1; }
  mkdir -p "$dest/bin"
  cp "$src/src/valkey-server" "$src/src/valkey-cli" "$dest/bin/"
  [ -d "$src/tests" ] && ln -sfn "$src" "$dest/source"
  say "valkey $ver ready in $dest ($(( $(date +%s) - t0 )) s)"
}

ensure_sources
if [ $# -eq 0 ]; then
  install_800
  source_800
  for v in 9.1.2 8.1.1; do build_source "$v"; done
else
  for v in "$@"; do
    case $v in 8.0.1) install_800 ;; *) build_source "$v" ;; esac
  done
fi
