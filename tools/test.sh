#!/usr/bin/env bash
# Runs every test: a normal build, then the same suite under AddressSanitizer + UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
JOBS=$(nproc)
run_suite() {  # build-dir extra-cmake-args...
  local dir=$1
  shift
  cmake -S . -B "$dir" -G Ninja -DSLUICE_BUILD_TESTS=ON "$@" >/dev/null
  cmake --build "$dir" -j"$JOBS"
  (cd "$dir" && ctest --output-on-failure -j"$JOBS" --timeout 300)
}
run_suite build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [ "${SLUICE_SKIP_SANITIZERS:-0}" != "1" ]; then
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_suite build-asan -DCMAKE_BUILD_TYPE=Debug -DSLUICE_SANITIZE=address,undefined
fi
echo "all tests passed"
