#!/usr/bin/env bash
# Runs every test: a normal build (the integration tests twice: io_uring, then epoll), then the
# same suite under AddressSanitizer + UBSan
# (SLUICE_SKIP_SANITIZERS=1 skips it), and with SLUICE_TSAN=1 once more under ThreadSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
JOBS=$(nproc)
run_suite() {  # build-dir extra-cmake-args...
  local dir=$1
  shift
  cmake -S . -B "$dir" -G Ninja -DSLUICE_BUILD_TESTS=ON "$@" >/dev/null
  cmake --build "$dir" -j"$JOBS"
  (cd "$dir" && ctest --output-on-failure --no-tests=error -j"$JOBS" --timeout "${TEST_TIMEOUT:-300}")
}
run_suite build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo
# The integration tests again with connections on libuv's epoll loop (--io epoll through
# SLUICE_IO): the path sluice takes where io_uring is unavailable.
(cd build-test && SLUICE_IO=epoll ctest -L integration --output-on-failure -j"$JOBS" \
  --timeout "${TEST_TIMEOUT:-300}")
if [ "${SLUICE_SKIP_SANITIZERS:-0}" != "1" ]; then
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_suite build-asan -DCMAKE_BUILD_TYPE=Debug -DSLUICE_SANITIZE=address,undefined
fi
# ThreadSanitizer: its own build (TSan cannot share one with ASan), with longer test limits.
# Opt-in (SLUICE_TSAN=1) until its time on CI's two cores is measured: see docs/testing.md.
if [ "${SLUICE_TSAN:-0}" = "1" ]; then
  TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1${TSAN_OPTIONS:+:$TSAN_OPTIONS}" \
    TEST_TIMEOUT=1800 run_suite build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_SANITIZE=thread
fi
echo "all tests passed"
