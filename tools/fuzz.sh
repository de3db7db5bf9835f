#!/usr/bin/env bash
# Runs one libFuzzer target for a while:  tools/fuzz.sh TARGET SECONDS [extra libFuzzer flags]
# Configures build-fuzz/ with clang (SLUICE_BUILD_FUZZERS=ON: ASan + UBSan + coverage, ccache),
# builds fuzz_TARGET, fuzzes in one process (no -jobs/-fork: the machine is shared) starting from test/fuzz/corpus/TARGET/, and copies each
# crash/leak/timeout reproducer into that corpus (where ctest replays it). New coverage goes to
# build-fuzz/corpus/TARGET/ (not checked in; merge by hand with -merge=1 if worth keeping).
# Targets: ls test/fuzz/*_fuzz.cc. Exit status: 0 when the run found nothing, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then
  echo "usage: tools/fuzz.sh TARGET SECONDS [libFuzzer flags...]" >&2
  echo "targets: $(ls test/fuzz/*_fuzz.cc | sed 's#.*/##; s#_fuzz.cc##' | tr '\n' ' ')" >&2
  exit 2
fi
target=$1
seconds=$2
shift 2
if [ ! -f "test/fuzz/${target}_fuzz.cc" ]; then
  echo "fuzz.sh: no target '${target}' (test/fuzz/${target}_fuzz.cc)" >&2
  exit 2
fi
for tool in clang clang++ cmake ninja; do
  command -v "$tool" >/dev/null || { echo "fuzz.sh: $tool not found (apt-get install clang)" >&2; exit 2; }
done
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
if [ ! -f build-fuzz/build.ninja ]; then
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSLUICE_BUILD_FUZZERS=ON -DSLUICE_BUILD_TESTS=OFF "${launcher[@]}" >/dev/null
fi
ninja -C build-fuzz "fuzz_${target}"

seeds="test/fuzz/corpus/${target}"
work="build-fuzz/corpus/${target}"
artifacts="build-fuzz/artifacts/${target}"
mkdir -p "$seeds" "$work" "$artifacts"
status=0
# halt_on_error/abort: ASan and UBSan findings stop the run with a reproducer; leaks count too.
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
  "build-fuzz/test/fuzz/fuzz_${target}" "$work" "$seeds" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$@" || status=$?
found=0
for f in "$artifacts"/*; do
  [ -f "$f" ] || continue
  name=$(basename "$f")
  if [ ! -f "$seeds/$name" ]; then
    cp "$f" "$seeds/$name"
    echo "fuzz.sh: new reproducer $seeds/$name"
    found=1
  fi
done
if [ "$status" -ne 0 ] || [ "$found" -ne 0 ]; then
  echo "fuzz.sh: ${target}: finding(s) above (libFuzzer exit $status); reproducers are in $seeds" >&2
  exit 1
fi
echo "fuzz.sh: ${target}: ${seconds}s, no finding ($(ls "$work" | wc -l) inputs in $work)"
