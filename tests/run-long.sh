#!/usr/bin/env bash
# The long command: everything tests/run-all.sh runs, plus the matrix on
# Valkey 8.1.1 (ctest label "long") and the crash soak's short form against
# Valkey 9.1.2.  DP_SOAK_ROUNDS sets the soak's rounds (default 60).
set -euo pipefail
DP_TEST_LONG=1 exec "$(cd "$(dirname "$0")" && pwd)/run-all.sh" "$@"
