#!/usr/bin/env bash
# How evenly 2 workers share the load (issue 12, item 3): sluice with 2 workers (SO_REUSEPORT
# listeners) under wrk, unpinned; prints each worker thread's CPU over the window (threads are
# named sluice-w0, sluice-w1) and its share, and the requests each served
# (sluice_worker_requests_total{worker}), and the connections each holds mid-window
# (sluice_worker_connections_active{worker}).
#   tools/bench-worker-spread.sh [CONNECTIONS] [SECONDS]
# Env: SLUICE_BENCH_BIN (build-rel/sluice), CHAIN (router+access_log), SLUICE_BALANCE (kernel
# or exact: the listener's connection_balance).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
conns=${1:-64} secs=${2:-8}
bin=${SLUICE_BENCH_BIN:-$here/build-rel/sluice}
upstream_bin=$(dirname "$bin")/tools/sluice-test-upstream
[ -x "$upstream_bin" ] || upstream_bin=$here/build-rel/tools/sluice-test-upstream
pids=()
tmp_out=$(mktemp)
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -f "$tmp_out"' EXIT
while ss -ltn | grep -qE ":(18180|18190|18191) "; do sleep 0.2; done
"$upstream_bin" --listen 127.0.0.1:18180 --name up > /dev/null 2>&1 &
pids+=($!)
SLUICE_ADMIN_PORT=18191 SLUICE_BENCH_BIN=$bin "$here/tools/peers-candidate.sh" 18190 18180 2 "${CHAIN:-router+access_log}" \
  > /dev/null 2>&1 &
proxy=$!
pids+=($proxy)
for _ in $(seq 50); do
  curl -s -o /dev/null http://127.0.0.1:18190/healthz && break
  sleep 0.1
done
wrk -t1 -c"$conns" -d2s http://127.0.0.1:18190/healthz > /dev/null # warm-up
ticks() {
  for t in /proc/$proxy/task/*; do
    echo "$(cat "$t/comm") $(awk '{ print $14 + $15 }' "$t/stat")"
  done | grep '^sluice-w' | sort
}
served() {
  curl -s http://127.0.0.1:18191/stats/prometheus |
    sed -n 's/^sluice_worker_requests_total{worker="\([0-9]*\)"} \([0-9.e+]*\)$/sluice-w\1 \2/p' | sort
}
a=$(ticks)
ra=$(served)
wrk -t1 -c"$conns" -d"${secs}s" http://127.0.0.1:18190/healthz > "$tmp_out" &
wrk_pid=$!
sleep $((secs / 2))
curl -s http://127.0.0.1:18191/stats/prometheus |
  sed -n 's/^sluice_worker_connections_active{worker="\([0-9]*\)"} \([0-9.e+]*\)$/sluice-w\1 \2 connections (mid-window)/p' | sort
wait "$wrk_pid"
grep -E 'Requests/sec' "$tmp_out"
b=$(ticks)
rb=$(served)
join <(echo "$a") <(echo "$b") | awk '{ d[$1] = $3 - $2; s += $3 - $2 }
  END { for (w in d) printf "%s %d ticks (%.1f %%)\n", w, d[w], 100 * d[w] / s }' | sort
join <(echo "$ra") <(echo "$rb") | awk '{ d[$1] = $3 - $2; s += $3 - $2 }
  END { for (w in d) printf "%s %d requests (%.1f %%)\n", w, d[w], 100 * d[w] / s }' | sort
