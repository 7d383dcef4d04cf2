#!/usr/bin/env bash
# Longer fuzzing runs with libFuzzer: builds every tests/fuzz/fuzz_<name>.cc
# with clang, ASan+UBSan and coverage into build-fuzz, then runs each target
# for the given number of seconds (default 60), one after the other.
#   tests/fuzz/run.sh [seconds] [fuzz_<name>...]
# The corpus of each target is kept in build-fuzz/corpus/<target>; crashing
# inputs are written to build-fuzz/artifacts/ and replay with
#   build-fuzz/tests/<target> <file>
# (or with the gcc build's standalone driver: build/tests/<target> <file>).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-60}
shift || true
build=${DP_FUZZ_BUILD_DIR:-$root/build-fuzz}

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for src in "$root"/tests/fuzz/fuzz_*.cc; do targets+=("$(basename "$src" .cc)"); done
fi

# fuzzer-no-link instruments the libraries too, so libFuzzer sees their
# coverage; the targets themselves get -fsanitize=fuzzer from tests/CMakeLists.txt.
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DDP_FUZZ=ON -DDP_SANITIZE=address \
  -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link -DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link >/dev/null
cmake --build "$build" -j2 --target "${targets[@]}"

# A few valid inputs to start from (byte 0 is each target's mode byte).
seed() {  # seed <target> <name> <printf format>
  local dir="$build/corpus/$1"
  mkdir -p "$dir"
  [ -e "$dir/seed-$2" ] || printf "$3" >"$dir/seed-$2"
}
seed fuzz_request_parser multibulk '\000*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n*1\r\n$4\r\nPING\r\n'
seed fuzz_request_parser inline '\001PING\r\nSET k "a\\x41 b" '"'"'it\\'"'"'s'"'"'\r\n\r\n*0\r\n*-1\r\n'
seed fuzz_request_parser limits '\001*2\r\n$4\r\nECHO\r\n$17\r\n01234567890123456\r\n'
seed fuzz_reply_framer resp2 '\000+OK\r\n-ERR x\r\n:-1\r\n$3\r\nfoo\r\n$-1\r\n*-1\r\n*2\r\n:1\r\n*1\r\n+a\r\n'
seed fuzz_reply_framer resp3 '\000_\r\n,1.5\r\n#t\r\n(123\r\n!3\r\nERR\r\n=7\r\ntxt:abc\r\n%%1\r\n+a\r\n~1\r\n:1\r\n'
seed fuzz_reply_framer push '\002|1\r\n+ttl\r\n:3\r\n>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n'

status=0
for t in "${targets[@]}"; do
  echo "== $t for ${secs}s" >&2
  mkdir -p "$build/corpus/$t" "$build/artifacts"
  if ! ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      "$build/tests/$t" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" "$build/corpus/$t"; then
    echo "== $t FAILED: see $build/artifacts/" >&2
    status=1
  fi
done
exit $status
