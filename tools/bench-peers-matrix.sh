#!/usr/bin/env bash
# The issue-12 bar matrix: peers.sh once per configuration, nginx, HAProxy and sluice interleaved
# in every round.
#   PEERS_SH=/path/to/peers.sh tools/bench-peers-matrix.sh OUTDIR CONFIG...
#   CONFIG: c64 (16 B body, 64 connections), c8, c1 (one connection: latency-bound), 4k (4 KiB body, c64), nopin (c64 unpinned),
#           w2 (c64, 2 workers), w2x (w2 with connection_balance "exact" for sluice)
# Env: SLUICE_BENCH_BIN (default build-rel/sluice), RUNS (5), DUR (5 s), CHAIN
# (router+access_log: a JSON access log to a file, as the bar asks).
# RELAY=MODE measures sluice-bench-relay MODE (epoll, uring, uring:K:M, ...; next to the sluice
# binary, in tools/) in sluice's place: the kernel floor with no HTTP in the proxy (BENCHMARKS.md).
# Writes OUTDIR/CONFIG.md (peers.sh's tables) and OUTDIR/CONFIG.err (its progress); with RELAY,
# OUTDIR/CONFIG-relay-MODE.md/.err (':' in MODE becomes '-').
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
: "${PEERS_SH:?set PEERS_SH to the peers.sh benchmark script}"
out=$1
shift
mkdir -p "$out"
runs=${RUNS:-5} dur=${DUR:-5} chain=${CHAIN:-router+access_log}
export SLUICE_BENCH_BIN=${SLUICE_BENCH_BIN:-$here/build-rel/sluice}
for cfg in "$@"; do
  case $cfg in
    c64) args=(--body small -c 64 --workers 1) ;;
    c8) args=(--body small -c 8 --workers 1) ;;
    c1) args=(--body small -c 1 --workers 1) ;;
    4k) args=(--body 4k -c 64 --workers 1) ;;
    nopin) args=(--body small -c 64 --workers 1 --no-pin) ;;
    w2) args=(--body small -c 64 --workers 2) ;;
    w2x) args=(--body small -c 64 --workers 2) ;;
    *) echo "unknown configuration: $cfg (c64, c8, c1, 4k, nopin, w2, w2x)" >&2; exit 2 ;;
  esac
  balance=kernel
  [ "$cfg" = w2x ] && balance=exact
  cmd="$here/tools/peers-candidate.sh {PORT} {UPSTREAM_PORT} {WORKERS} $chain" name=sluice
  if [ -n "${RELAY:-}" ]; then
    cmd="$(dirname "$SLUICE_BENCH_BIN")/tools/sluice-bench-relay $RELAY {PORT} {UPSTREAM_PORT}"
    name=relay-${RELAY//:/-}
  fi
  file=$cfg${RELAY:+-$name}
  SLUICE_BALANCE=$balance bash "$PEERS_SH" "${args[@]}" -d "$dur" --warmup 2 --runs "$runs" \
    --targets nginx,haproxy,candidate --candidate-cmd "$cmd" \
    --candidate-port 18090 --candidate-name "$name" > "$out/$file.md" 2> "$out/$file.err"
  echo "$cfg done $(date -u +%T)"
done
