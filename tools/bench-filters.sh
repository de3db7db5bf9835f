#!/usr/bin/env bash
# `sluice bench-filter` for every built-in filter and example extension, over the mixed corpus
# in benchmarks/bench-filter/, printed as a Markdown table (CPU-bound, one thread, no network).
#   tools/bench-filters.sh [BUILD_DIR] [ITERATIONS]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
N=${2:-200000}
DIR=$ROOT/benchmarks/bench-filter
SLUICE=$BUILD/sluice
run() { # name type [module]
  local args=(bench-filter --filter "$2" --config "@$DIR/$1.json" --requests "$DIR/mixed.jsonl"
              --iterations "$N" --json)
  if [ -n "${3:-}" ]; then args+=(--module "$3"); fi
  "$SLUICE" "${args[@]}" | /usr/bin/python3 -c '
import json, sys
r = json.load(sys.stdin)
a = r["filter_allocs_per_request"]
ca = r["chain"]["allocs_per_request"]
st = ", ".join("%s: %d" % kv for kv in sorted(r["statuses"].items()))
print("| %s | %.0f | %.0f | %.0f | %.0f | %s | %s | %s |" % (sys.argv[1], r["chain"]["median_ns"],
      r["chain"]["p99_ns"], r["baseline"]["median_ns"], r["filter_ns"],
      "n/a" if a is None else "%.2f" % a, "n/a" if ca is None else "%.3f" % ca, st))' "$1"
}
echo "| filter | chain median ns/req | chain p99 | baseline median | filter cost ns | filter allocs/req | chain allocs/req | responses |"
echo "|---|---:|---:|---:|---:|---:|---:|---|"
for f in router access_log ai_agent_tagger cors jwt_authn ratelimit; do
  run "$f" "$f"
done
for e in header_rewrite ip_allowlist body_transform; do
  run "$e" "$e" "$BUILD/extensions/lib$e.so"
done
run noop noop "$BUILD/test/api/libsluice_test_noop_filter.so"
