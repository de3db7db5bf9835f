#!/usr/bin/env bash
# Issue 12, item 3: sluice's CPU per request with 2 workers against 1, both on CPU 1 (the upstream
# and wrk on CPU 0), in interleaved windows.
#   tools/bench-worker-cost.sh [ROUNDS]
# Env: C (connections, 64, split over two wrk instances), SECS (window, 5), PROCESSES=1 (also two
# sluice processes of 1 worker each, one wrk instance on each: two loops sharing the core without
# sharing a process), RELAY=MODE (sluice-bench-relay MODE, no HTTP, instead of sluice: 1 process
# against 2), SATURATE=1 (a busy loop shares CPU 1 at normal
# priority, so the proxy never idles: per-request work without the batching and warm caches that
# idle time buys a lone worker), SLUICE_BENCH_BIN (build-rel/sluice), SLUICE_IO, CHAIN
# (router+access_log).
# Prints per window: requests/s and sluice's process CPU (user + system, every thread) per request
# (requests counted by the upstream over the window); then per round the 2-worker / 1-worker ratio
# and their median.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-3} secs=${SECS:-5} conns=${C:-64}
bin=${SLUICE_BENCH_BIN:-$here/build-rel/sluice}
upstream_bin=$(dirname "$bin")/tools/sluice-test-upstream
[ -x "$upstream_bin" ] || upstream_bin=$here/build-rel/tools/sluice-test-upstream
hz=$(getconf CLK_TCK)
pids=()
cleanup() { kill "${pids[@]}" 2> /dev/null || true; wait 2> /dev/null || true; }
trap cleanup EXIT

window() { # WORKERS PROCESSES -> prints "rps us_per_request"
  local workers=$1 procs=$2 up spin="" p port ports=() sps=() wps=() a b
  while ss -ltn | grep -qE ":(18180|18190|18191) "; do sleep 0.2; done
  taskset -c 0 "$upstream_bin" --listen 127.0.0.1:18180 --name up > /dev/null 2>&1 &
  up=$!
  pids=("$up")
  for ((p = 0; p < procs; p++)); do
    port=$((18190 + p))
    if [ -n "${RELAY:-}" ]; then
      taskset -c 1 "$(dirname "$bin")/tools/sluice-bench-relay" "$RELAY" "$port" 18180 \
        > /dev/null 2>&1 &
    else
      SLUICE_BENCH_BIN=$bin taskset -c 1 "$here/tools/peers-candidate.sh" "$port" 18180 \
        "$workers" "${CHAIN:-router+access_log}" > /dev/null 2>&1 &
    fi
    sps+=($!) # peers-candidate.sh execs sluice: the same pid
    ports+=("$port")
  done
  pids+=("${sps[@]}")
  for port in "${ports[@]}"; do
    for _ in $(seq 50); do
      curl -s -o /dev/null "http://127.0.0.1:$port/" && break
      sleep 0.1
    done
  done
  if [ "${SATURATE:-0}" = 1 ]; then
    taskset -c 1 sh -c 'while :; do :; done' &
    spin=$!
    pids+=("$spin")
  fi
  # Two wrk instances of C/2 connections in every window (one per process when there are two).
  for ((p = 0; p < 2; p++)); do
    taskset -c 0 wrk -t1 -c$((conns / 2)) -d$((secs + 4))s "http://127.0.0.1:${ports[p % procs]}/" \
      > /dev/null 2>&1 &
    wps+=($!)
  done
  pids+=("${wps[@]}")
  sleep 2
  snap() {
    local t=0 q
    for q in "${sps[@]}"; do
      t=$((t + $(awk '{ print $14 + $15 }' "/proc/$q/stat")))
    done
    echo "$t $(curl -s http://127.0.0.1:18180/stats | sed 's/.*"requests": *\([0-9]*\).*/\1/')"
  }
  read -r -a a <<< "$(snap)"
  sleep "$secs"
  read -r -a b <<< "$(snap)"
  wait "${wps[@]}" || true
  kill "${sps[@]}" "$up" ${spin:+"$spin"} 2> /dev/null || true
  wait 2> /dev/null || true
  pids=()
  awk -v t=$((b[0] - a[0])) -v n=$((b[1] - a[1])) -v hz="$hz" -v s="$secs" \
    'BEGIN { printf "%d %.2f\n", n / s, t * 1e6 / hz / n }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b / a }'; }
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END {
  printf "%.2f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

one="1 worker" summary=""
if [ -n "${RELAY:-}" ]; then
  one="relay $RELAY, 1 process"
  PROCESSES=1 # the relay has one thread: only processes compare
fi
ratios=()
pratios=()
for r in $(seq "$rounds"); do
  read -r rps1 us1 <<< "$(window 1 1)"
  line="round $r: $one $rps1 req/s, $us1 us/request"
  if [ -z "${RELAY:-}" ]; then
    read -r rps2 us2 <<< "$(window 2 1)"
    ratios+=("$(ratio "$us1" "$us2")")
    line="$line; 2 workers $rps2 req/s, $us2 us/request; /1 = ${ratios[-1]}"
  fi
  if [ "${PROCESSES:-0}" = 1 ]; then
    read -r rps3 us3 <<< "$(window 1 2)"
    pratios+=("$(ratio "$us1" "$us3")")
    line="$line; 2 processes $rps3 req/s, $us3 us/request; /1 = ${pratios[-1]}"
  fi
  echo "$line"
done
[ ${#ratios[@]} -gt 0 ] && summary="2 workers / 1: $(median "${ratios[@]}")"
[ ${#pratios[@]} -gt 0 ] && summary="${summary:+$summary; }2 processes / 1: $(median "${pratios[@]}")"
where="CPU 1 to itself"
[ "${SATURATE:-0}" = 1 ] && where="CPU 1 shared with a busy loop"
echo "median $summary ($where)"
