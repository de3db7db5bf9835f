#!/usr/bin/env bash
# How a proxy's event loop spends a request (issue 12, items 1-2): the upstream and wrk on CPU 0,
# the proxy alone on CPU 1; during a window under wrk, perf counts the syscalls and context
# switches on CPU 1 and samples it (kernel symbols included).
#   tools/bench-loop-profile.sh sluice|nginx|haproxy|relay:MODE OUTDIR [SECONDS]
# relay:MODE is sluice-bench-relay MODE (any of its modes: epoll, uring, uring:K:M, ...): the
# kernel floor, no HTTP.
# Env: C (connections, 64), WORKERS (sluice's workers, all on CPU 1; 1), SLUICE_BENCH_BIN
# (build-rel/sluice), CHAIN (router+access_log), DELAY_MS (each connection waits this long after
# a response before its next request: the same offered load for every proxy, none saturated).
# Needs root (perf on every CPU), taskset, wrk, perf, nginx and haproxy for those targets.
# Prints per request (requests counted by the upstream over the window): waits (epoll_wait and
# io_uring_enter calls),
# context switches on CPU 1, the proxy's share and the idle share of CPU 1, and the proxy's
# sampled CPU µs (inflated by perf's own sampling: compare targets, not absolute numbers).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
target=$1 out=$2 secs=${3:-5}
bin=${SLUICE_BENCH_BIN:-$here/build-rel/sluice}
upstream_bin=$(dirname "$bin")/tools/sluice-test-upstream
[ -x "$upstream_bin" ] || upstream_bin=$here/build-rel/tools/sluice-test-upstream
mkdir -p "$out"
dir=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
while ss -ltn | grep -qE ":(18180|18190) "; do sleep 0.2; done
taskset -c 0 "$upstream_bin" --listen 127.0.0.1:18180 --name up > "$dir/up.log" 2>&1 &
pids+=($!)
case $target in
  haproxy)
    cat > "$dir/haproxy.cfg" <<CFG
global
    nbthread 1
    maxconn 5000
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-keep-alive 300s
frontend fe
    bind 127.0.0.1:18190
    default_backend be
backend be
    server up1 127.0.0.1:18180
CFG
    taskset -c 1 haproxy -db -f "$dir/haproxy.cfg" > "$dir/proxy.log" 2>&1 &
    comm=haproxy ;;
  nginx)
    cat > "$dir/nginx.conf" <<CFG
worker_processes 1; daemon off; master_process off; pid $dir/nginx.pid; error_log $dir/nginx.err;
events { worker_connections 10000; }
http { access_log off; upstream up { server 127.0.0.1:18180; keepalive 128; }
  server { listen 127.0.0.1:18190;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
CFG
    taskset -c 1 nginx -p "$dir" -c "$dir/nginx.conf" > "$dir/proxy.log" 2>&1 &
    comm=nginx ;;
  sluice)
    SLUICE_BENCH_BIN=$bin taskset -c 1 "$here/tools/peers-candidate.sh" 18190 18180 "${WORKERS:-1}" \
      "${CHAIN:-router+access_log}" > "$dir/proxy.log" 2>&1 &
    comm=sluice ;;
  relay:*)
    taskset -c 1 "$(dirname "$bin")/tools/sluice-bench-relay" "${target#relay:}" 18190 18180 \
      > "$dir/proxy.log" 2>&1 &
    comm=sluice-bench-re ;; # a thread's comm is cut at 15 characters
  *) echo "unknown target: $target (sluice, nginx, haproxy, relay:MODE)" >&2; exit 2 ;;
esac
pids+=($!)
for _ in $(seq 50); do
  curl -s -o /dev/null http://127.0.0.1:18190/healthz && break
  sleep 0.1
done
upstream_requests() { curl -s http://127.0.0.1:18180/stats | sed 's/.*"requests": *\([0-9]*\).*/\1/'; }
wrk_script=()
if [ -n "${DELAY_MS:-}" ]; then
  printf 'function delay() return %d end\n' "$DELAY_MS" > "$dir/delay.lua"
  wrk_script=(-s "$dir/delay.lua")
fi
taskset -c 0 wrk -t1 -c"${C:-64}" -d$((secs + 4))s "${wrk_script[@]}" http://127.0.0.1:18190/healthz > "$out/$target.wrk" 2>&1 &
pids+=($!)
sleep 2
irqs() { awk '$1 ~ /^(LOC|RES|CAL):$/ { printf "%s %s %s ", $1, $2, $3 }' /proc/interrupts; }
before=$(upstream_requests)
proxy_pid=${pids[1]}
ticks() { awk '{ print $14 + $15 }' "/proc/$proxy_pid/stat"; }
irq_before=$(irqs) ticks_before=$(ticks)
nstat -n > /dev/null 2>&1 || true
perf stat -a -C 1 -o "$out/$target.stat" \
  -e 'syscalls:sys_enter_epoll_wait,syscalls:sys_enter_io_uring_enter,syscalls:sys_enter_read,syscalls:sys_enter_recvfrom,syscalls:sys_enter_write,syscalls:sys_enter_writev,syscalls:sys_enter_sendto,context-switches' \
  -- perf record -q -e cpu-clock -C 1 -o "$out/$target.data" -- sleep "$secs" 2> /dev/null
after=$(upstream_requests)
irq_after=$(irqs) ticks_after=$(ticks)
nstat -z > "$dir/nstat" 2> /dev/null || true
requests=$((after - before - 1))
count() { awk -v e="$1" '$2 == e { gsub(",", "", $1); print $1 }' "$out/$target.stat"; }
share() { perf report -i "$out/$target.data" --no-children --sort comm -g none -q 2> /dev/null |
  awk -v c="$1" '$2 ~ c { s += $1 } END { printf "%.1f", s }'; }
proxy=$(share "^($comm|sluice-)") idle=$(share '^swapper')
ew=$(($(count syscalls:sys_enter_epoll_wait) + $(count syscalls:sys_enter_io_uring_enter)))
awk -v t="$target" -v n="$requests" -v ew="$ew" \
  -v cs="$(count context-switches)" -v p="$proxy" -v i="$idle" -v s="$secs" 'BEGIN {
  printf "%s: %d requests in %d s; per request: waits %.3f, context switches %.3f; CPU 1: proxy %.1f %%, idle %.1f %%; proxy %.1f us/request (sampled)\n",
    t, n, s, ew / n, cs / n, p, i, p / 100 * s * 1e6 / n }' | tee "$out/$target.txt"
# The proxy's own CPU time over the window as /proc/PID/stat counts it (peers.sh's "proxy CPU
# µs/req"), next to the sampled figure above.
awk -v n="$requests" -v t=$((ticks_after - ticks_before)) -v hz="$(getconf CLK_TCK)" 'BEGIN {
  printf "  proxy CPU from /proc/PID/stat: %.1f us/request\n", t / hz * 1e6 / n }' | tee -a "$out/$target.txt"
# Interrupts per request on each CPU (CPU 0: wrk and the upstream, CPU 1: the proxy): LOC local
# timer, RES rescheduling IPIs (a wake-up of a thread on that CPU from the other), CAL
# function-call IPIs. On a VM each one is a trip through the hypervisor.
awk -v n="$requests" -v b="$irq_before" -v a="$irq_after" 'BEGIN {
  nb = split(b, B, " "); split(a, A, " "); line = "  interrupts per request (CPU 0 / CPU 1):"
  for (k = 1; k <= nb; k += 3) line = line sprintf(" %s %.3f / %.3f", B[k], (A[k+1] - B[k+1]) / n, (A[k+2] - B[k+2]) / n)
  print line }' | tee -a "$out/$target.txt"
# TCP segments per request over the whole box (all four hops: wrk, proxy, upstream): data and
# pure ACKs together, and the ACKs sent early or delayed.
if [ -s "$dir/nstat" ]; then
  awk -v n="$requests" '$1 == "TcpOutSegs" || $1 == "TcpExtDelayedACKs" || $1 == "TcpExtTCPPureAcks" ||
    $1 == "TcpExtTCPHPAcks" || $1 == "TcpExtTCPDelivered" { line = line sprintf(" %s %.3f", $1, $2 / n) }
    END { print "  per request:" line }' "$dir/nstat" | tee -a "$out/$target.txt"
fi
