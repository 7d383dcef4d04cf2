#!/usr/bin/env bash
# Sets everything up, builds, and runs the whole test suite:
#   1. release build: unit, fuzz smoke and integration tests (real servers);
#   2. AddressSanitizer + UndefinedBehaviorSanitizer build, assertions live
#      (no NDEBUG): unit tests, fuzz
#      smoke runs, and the durability, recovery, checkpoint and core
#      pass-through integration suites;
#   3. ThreadSanitizer build: the log writer's concurrency tests.
# Every build has -DDP_WERROR=ON (warnings are errors).  DP_TEST_QUICK=1 runs
# only step 1.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc)
"$root/deploy/setup-debian.sh"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true

echo "== release build" >&2
DP_BUILD_DIR="$root/build" "$root/deploy/build.sh" -DDP_WERROR=ON
(cd "$root/build" && ctest --output-on-failure -j"$jobs")

if [ "${DP_TEST_QUICK:-0}" != 1 ]; then
  echo "== ASan+UBSan build" >&2
  # Assertions live (no -DNDEBUG): the handle-lifecycle asserts run here.
  DP_BUILD_DIR="$root/build-asan" "$root/deploy/build.sh" -DDP_WERROR=ON -DDP_SANITIZE=address \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g"
  # Unit tests, fuzz smoke runs, and the integration suites of the durability
  # path (gate, recovery, checkpoints) and of the core pass-through.  The
  # fsync shim is preloaded into the instrumented proxy in some of them,
  # hence verify_asan_link_order=0.
  (cd "$root/build-asan" && DP_SANITIZED=1 \
     ASAN_OPTIONS=detect_leaks=1:verify_asan_link_order=0 \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     ctest --output-on-failure -j"$jobs" \
       -R '^(unit_|smoke_|it_test_durability_|it_test_recovery_|it_test_checkpoint$|it_test_passthrough_(basic|session|protocol|pubsub)$)')
  echo "== TSan build (log writer)" >&2
  DP_BUILD_DIR="$root/build-tsan" "$root/deploy/build.sh" -DDP_WERROR=ON -DDP_SANITIZE=thread
  (cd "$root/build-tsan" && ctest --output-on-failure -j"$jobs" -R '^unit_log$')
fi
echo "all tests passed" >&2
