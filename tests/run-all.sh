#!/usr/bin/env bash
# Sets everything up, builds, and runs the whole test suite:
#   1. release build: unit, fuzz smoke and integration tests (real servers).
#      The durability, recovery, checkpoint and core pass-through suites run
#      against every upstream server deploy/setup-valkey.sh installs (Redis
#      7.0.15, Valkey 8.0.1 and 9.1.2; Valkey 8.1.1 only in the long run),
#      the others against the default server (Valkey 8.0.1);
#   2. AddressSanitizer + UndefinedBehaviorSanitizer build, assertions live
#      (no NDEBUG): unit tests, fuzz
#      smoke runs, and the durability, recovery, checkpoint and core
#      pass-through integration suites against the default server and
#      Valkey 9.1.2;
#   3. ThreadSanitizer build: the log writer's concurrency tests.
# Every build has -DDP_WERROR=ON (warnings are errors).
# DP_TEST_QUICK=1 runs only step 1.
# DP_TEST_LONG=1 (or tests/run-long.sh) adds the ctest entries labelled
# "long" (the matrix on Valkey 8.1.1) and, at the end, the crash soak's
# short form against Valkey 9.1.2 (DP_SOAK_ROUNDS rounds, default 60).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc)
long=${DP_TEST_LONG:-0}
"$root/deploy/setup-debian.sh"
"$root/deploy/setup-valkey.sh"
"$root/tests/clients/setup.sh"
# The setup installed node and tests/clients' packages: the cluster-client
# tests fail, rather than skip, if they are missing.
export DP_REQUIRE_NODE_CLIENTS=1
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
"$root/deploy/setup-valkey.sh" --print | sed 's/^/upstream server: /' >&2

# ctest's label filter: the long run takes everything.
release_filter=(-LE '^long$')
[ "$long" = 1 ] && release_filter=()

echo "== release build" >&2
DP_BUILD_DIR="$root/build" "$root/deploy/build.sh" -DDP_WERROR=ON
(cd "$root/build" && ctest --output-on-failure -j"$jobs" "${release_filter[@]}")

if [ "${DP_TEST_QUICK:-0}" != 1 ]; then
  echo "== ASan+UBSan build" >&2
  # Assertions live (no -DNDEBUG): the handle-lifecycle asserts run here.
  DP_BUILD_DIR="$root/build-asan" "$root/deploy/build.sh" -DDP_WERROR=ON -DDP_SANITIZE=address \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g"
  # Unit tests, fuzz smoke runs, and the integration suites of the durability
  # path (gate, recovery, checkpoints) and of the core pass-through, against
  # the default server and Valkey 9.1.2, some with upstream.sharing: auto
  # (test_sharing, the *_shared entries).  The fsync shim is preloaded into
  # the instrumented proxy in some of them, hence verify_asan_link_order=0.
  asan() {
    (cd "$root/build-asan" && DP_SANITIZED=1 \
       ASAN_OPTIONS=detect_leaks=1:verify_asan_link_order=0 \
       UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
       ctest --output-on-failure -j"$jobs" "$@")
  }
  asan -R '^(unit_|smoke_)'
  asan -R '^it_test_(durability_|recovery_|checkpoint@|sharing@|passthrough_(basic|session|protocol|pubsub)(_shared)?@)' \
       -L '^(default|server:valkey-9\.1\.2)$'
  echo "== TSan build (log writer)" >&2
  DP_BUILD_DIR="$root/build-tsan" "$root/deploy/build.sh" -DDP_WERROR=ON -DDP_SANITIZE=thread
  (cd "$root/build-tsan" && ctest --output-on-failure -j"$jobs" -R '^unit_log$')
fi

if [ "$long" = 1 ]; then
  echo "== crash soak (short form) against Valkey 9.1.2" >&2
  v912=$("$root/deploy/setup-valkey.sh" --print | awk '$1 == "valkey" && $2 == "9.1.2" {print $3}')
  [ -n "$v912" ] || { echo "run-all: Valkey 9.1.2 not installed (deploy/setup-valkey.sh)" >&2; exit 1; }
  DP_BINARY="$root/build/durable-proxy" "$root/tests/crash/soak.sh" "${DP_SOAK_ROUNDS:-60}" --server "$v912"
fi
echo "all tests passed" >&2
