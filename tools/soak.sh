#!/usr/bin/env bash
# Soak: N keep-alive requests through sluice (wrk, one connection per wrk thread) while the
# config is reloaded every few seconds (POST /reload) and one endpoint flaps: drained through
# the admin API, removed by a reload, added back by the next. Samples the sluice process's open
# FDs (/proc/PID/fd) and RSS (VmRSS) every SOAK_SAMPLE_S seconds, then checks:
#   - FD count and RSS flat: the last sample under load is within a tolerance of the first
#     sample after warm-up (SOAK_WARMUP_PCT of the requests served);
#   - requests the client completed == requests the upstreams counted == access-log lines;
#   - 0 failed requests: no socket error, no status outside 2xx, every log line a 200;
#   - every reload and drain answered 200, and sluice exits 0 on SIGTERM.
# Prints its figures; exits 0 when every check passes, 1 when one fails, 2 on a usage or setup
# error.
#
# usage: tools/soak.sh [-n REQUESTS] [-c CONNECTIONS] [-b BUILD_DIR] [-k]
#   -n  requests in total (default 1000000; rounded down to a multiple of CONNECTIONS)
#   -c  keep-alive connections = wrk threads (default 4)
#   -b  build folder holding sluice and tools/sluice-test-upstream (default build)
#   -k  keep the work folder (config, access log, samples, logs) and print its path
# Environment: SOAK_WORKERS (sluice workers, 2), SOAK_RELOAD_EVERY_S (3), SOAK_SAMPLE_S (1),
# SOAK_PACE_MS (0: as fast as the client can; N: each connection waits N ms before each request,
# so a run lasts at least N x requests-per-connection ms on any machine),
# SOAK_WARMUP_PCT (20), SOAK_FD_TOLERANCE (16 descriptors), SOAK_RSS_TOLERANCE_PCT (10; never
# below 4 MiB), SLUICE_BIN and SLUICE_UPSTREAM_BIN (override -b).
set -euo pipefail

REQUESTS=1000000
CONNS=4
BUILD=build
KEEP=0
while getopts "n:c:b:kh" opt; do
  case $opt in
    n) REQUESTS=$OPTARG ;;
    c) CONNS=$OPTARG ;;
    b) BUILD=$OPTARG ;;
    k) KEEP=1 ;;
    h)
      sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *) exit 2 ;;
  esac
done
WORKERS=${SOAK_WORKERS:-2}
RELOAD_EVERY=${SOAK_RELOAD_EVERY_S:-3}
SAMPLE_EVERY=${SOAK_SAMPLE_S:-1}
PACE_MS=${SOAK_PACE_MS:-0}
WARMUP_PCT=${SOAK_WARMUP_PCT:-20}
FD_TOL=${SOAK_FD_TOLERANCE:-16}
RSS_TOL_PCT=${SOAK_RSS_TOLERANCE_PCT:-10}
SLUICE=${SLUICE_BIN:-$BUILD/sluice}
UPSTREAM=${SLUICE_UPSTREAM_BIN:-$BUILD/tools/sluice-test-upstream}
KEY=soak-admin-key

die() {
  echo "soak: $*" >&2
  exit 2
}
for n in "$REQUESTS" "$CONNS" "$WORKERS" "$FD_TOL" "$RSS_TOL_PCT" "$WARMUP_PCT"; do
  [[ $n =~ ^[0-9]+$ ]] || die "expected a whole number, got '$n'"
done
[ "$CONNS" -ge 1 ] || die "-c must be at least 1"
PER_CONN=$((REQUESTS / CONNS))
[ "$PER_CONN" -ge 1 ] || die "-n must be at least -c"
REQUESTS=$((PER_CONN * CONNS))
command -v wrk >/dev/null || die "wrk not found (Debian package wrk)"
command -v curl >/dev/null || die "curl not found"
[ -x "$SLUICE" ] || die "no sluice binary at $SLUICE (build it, or pass -b / SLUICE_BIN)"
[ -x "$UPSTREAM" ] || die "no test upstream at $UPSTREAM (ninja sluice-test-upstream)"

WORK=$(mktemp -d /tmp/sluice-soak-XXXXXX)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [ "$KEEP" = 1 ]; then
    echo "soak: work folder kept: $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

# Waits up to $2 seconds for the extended regex $1 in file $3; prints the first match.
wait_for_line() {
  local i
  for ((i = 0; i < $2 * 50; i++)); do
    if grep -Eo "$1" "$3" 2>/dev/null | head -1 | grep .; then
      return 0
    fi
    sleep 0.02
  done
  die "no '$1' in $3 after $2 s: $(tail -5 "$3")"
}

"$UPSTREAM" --listen 127.0.0.1:0 --name a >"$WORK/upstream-a.out" 2>&1 &
PIDS+=($!)
"$UPSTREAM" --listen 127.0.0.1:0 --name b >"$WORK/upstream-b.out" 2>&1 &
PIDS+=($!)
port_of() { # regex file -> the port of the first match (exits on a timeout)
  local line
  line=$(wait_for_line "$1" 30 "$2") || exit 2
  echo "${line##*:}"
}
A_PORT=$(port_of 'listening [0-9.]+:[0-9]+' "$WORK/upstream-a.out")
B_PORT=$(port_of 'listening [0-9.]+:[0-9]+' "$WORK/upstream-b.out")
A=127.0.0.1:$A_PORT
B=127.0.0.1:$B_PORT

write_config() { # listener-port endpoint...
  local port=$1 eps="" e
  shift
  for e in "$@"; do
    eps+="${eps:+, }{\"address\": \"$e\"}"
  done
  cat >"$WORK/config.json.tmp" <<EOF
{
  "workers": $WORKERS,
  "admin": {"address": "127.0.0.1:0", "api_key": "$KEY"},
  "shutdown": {"pre_drain_ms": 0, "drain_ms": 5000, "teardown_ms": 2000},
  "listeners": [{
    "name": "web", "address": "127.0.0.1:$port",
    "filters": [
      {"type": "router", "config": {"virtual_hosts": [{"name": "all", "domains": ["*"],
        "routes": [{"match": {"prefix": "/"}, "cluster": "up"}]}]}},
      {"type": "access_log", "config": {"path": "access.log", "flush_ms": 200,
        "format": {"template": "%STATUS% %UPSTREAM_ENDPOINT% %FLAGS%"}}}
    ]
  }],
  "clusters": [{"name": "up", "endpoints": [$eps]}]
}
EOF
  mv "$WORK/config.json.tmp" "$WORK/config.json"
}

write_config 0 "$A" "$B"
"$SLUICE" run -c "$WORK/config.json" >"$WORK/sluice.out" 2>"$WORK/sluice.err" &
SLUICE_PID=$!
PIDS+=($SLUICE_PID)
PORT=$(port_of 'listening listener=web address=[0-9.]+:[0-9]+' "$WORK/sluice.err")
ADMIN=$(port_of 'admin listening address=[0-9.]+:[0-9]+' "$WORK/sluice.err")
wait_for_line 'ready:' 30 "$WORK/sluice.err" >/dev/null
write_config "$PORT" "$A" "$B" # the same listener address from now on: reloads keep the socket

admin() { # method path -> prints the HTTP status
  curl -s -o /dev/null -w '%{http_code}' -X "$1" -H "Authorization: Bearer $KEY" \
    --max-time 30 "http://127.0.0.1:$ADMIN$2"
}
served() { # requests sluice has answered with 2xx so far (its own counter)
  curl -s --max-time 10 -H "Authorization: Bearer $KEY" "http://127.0.0.1:$ADMIN/stats/prometheus" |
    awk '/^sluice_downstream_requests_total\{.*code="2xx"/ {s += $2} END {printf "%d\n", s}'
}
upstream_requests() { # port -> requests that upstream counted (this /stats call included)
  curl -s --max-time 10 "http://127.0.0.1:$1/stats" | sed -n 's/.*"requests": *\([0-9]*\).*/\1/p'
}
A0=$(upstream_requests "$A_PORT")
B0=$(upstream_requests "$B_PORT")

# Client: wrk with one connection per thread; each thread stops after its share of responses,
# so no request is in flight when it stops and the client's count is exact.
cat >"$WORK/soak.lua" <<'EOF'
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  limit = tonumber(args[1])
  marker = args[2]
  seen = 0
  bad = 0
  local pace = tonumber(args[3]) or 0
  if pace > 0 then
    -- wrk looks for delay() after init: defined only when pacing, so an unpaced run keeps
    -- wrk's fast path.
    delay = function() return pace end
  end
end
function response(status, headers, body)
  seen = seen + 1
  if status < 200 or status > 299 then
    bad = bad + 1
  end
  if seen == limit then
    -- wrk's main thread sleeps for -d: tell the script this thread is done, then stop it.
    local f = io.open(marker, "a")
    f:write("done\n")
    f:close()
    wrk.thread:stop()
  end
end
function done(summary, latency, requests)
  local non2xx = 0
  for _, t in ipairs(threads) do
    non2xx = non2xx + t:get("bad")
  end
  local e = summary.errors
  io.write(string.format(
    "SOAK_CLIENT requests=%d non2xx=%d connect=%d read=%d write=%d timeout=%d seconds=%.1f\n",
    summary.requests, non2xx, e.connect, e.read, e.write, e.timeout, summary.duration / 1e6))
end
EOF

echo "soak: $REQUESTS requests over $CONNS keep-alive connections, sluice pid $SLUICE_PID" \
  "($WORKERS workers), upstreams a=$A b=$B, reload/flap every ${RELOAD_EVERY}s"
T0=$(date +%s.%N)
wrk -t "$CONNS" -c "$CONNS" -d 24h --timeout 30s -s "$WORK/soak.lua" \
  "http://127.0.0.1:$PORT/soak" -- "$PER_CONN" "$WORK/threads-done" "$PACE_MS" >"$WORK/wrk.out" 2>&1 &
WRK_PID=$!
PIDS+=($WRK_PID)

# Sampler: time, open FDs, RSS (kB), 2xx answered so far.
(
  while kill -0 "$WRK_PID" 2>/dev/null; do
    fds=$(find "/proc/$SLUICE_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$SLUICE_PID/status" 2>/dev/null || echo 0)
    echo "$(date +%s.%N) $fds ${rss:-0} $(served)"
    sleep "$SAMPLE_EVERY"
  done
) >"$WORK/samples.txt" &
SAMPLER_PID=$!
PIDS+=($SAMPLER_PID)

# Reloads and endpoint flaps, in a cycle of three steps:
#   reload with a and b (b back, fresh), drain b through the admin API, reload with a only.
(
  step=0
  while kill -0 "$WRK_PID" 2>/dev/null; do
    sleep "$RELOAD_EVERY"
    kill -0 "$WRK_PID" 2>/dev/null || break
    case $((step % 3)) in
      0)
        write_config "$PORT" "$A" "$B"
        echo "reload a+b $(admin POST /reload)"
        ;;
      1) echo "drain b $(admin POST "/clusters/up/endpoints/$B/drain")" ;;
      2)
        write_config "$PORT" "$A"
        echo "reload a $(admin POST /reload)"
        ;;
    esac
    step=$((step + 1))
  done
) >"$WORK/flaps.txt" &
FLAPPER_PID=$!
PIDS+=($FLAPPER_PID)

# Every wrk thread has its share: end wrk's -d sleep with SIGINT (it then prints its summary).
# A client that makes no progress for SOAK_STALL_S seconds is stopped the same way (and fails).
STALL=${SOAK_STALL_S:-60}
last=-1
last_change=$(date +%s)
while kill -0 "$WRK_PID" 2>/dev/null; do
  done_threads=0
  if [ -f "$WORK/threads-done" ]; then
    done_threads=$(wc -l <"$WORK/threads-done")
  fi
  if [ "$done_threads" -ge "$CONNS" ]; then
    break
  fi
  if ! kill -0 "$SLUICE_PID" 2>/dev/null; then
    echo "soak: sluice exited during the run: stopping the client"
    break
  fi
  now_served=$(awk 'END {print $4}' "$WORK/samples.txt")
  if [ "${now_served:-0}" != "$last" ]; then
    last=${now_served:-0}
    last_change=$(date +%s)
  elif [ $(($(date +%s) - last_change)) -ge "$STALL" ]; then
    echo "soak: no progress for ${STALL}s at $last requests: stopping the client"
    break
  fi
  sleep 0.2
done
kill -INT "$WRK_PID" 2>/dev/null || true
WRK_RC=0
wait "$WRK_PID" || WRK_RC=$?
wait "$SAMPLER_PID" || true
wait "$FLAPPER_PID" || true
T1=$(date +%s.%N)

fail=0
check() { # ok-expression-result label figures
  if [ "$1" = 1 ]; then
    echo "  ok    $2: $3"
  else
    echo "  FAIL  $2: $3"
    fail=1
  fi
}
is() { if eval "$1"; then echo 1; else echo 0; fi; }

# Samples: warm = first with WARMUP_PCT of the requests served; final = the last under load.
warm_at=$((REQUESTS * WARMUP_PCT / 100))
read -r W_T W_FD W_RSS W_N < <(awk -v w="$warm_at" '$4 >= w {print; exit}' "$WORK/samples.txt") || true
read -r F_T F_FD F_RSS F_N < <(tail -1 "$WORK/samples.txt") || true
MAX_FD=$(awk 'BEGIN {m = 0} $2 > m {m = $2} END {print m}' "$WORK/samples.txt")
MAX_RSS=$(awk 'BEGIN {m = 0} $3 > m {m = $3} END {print m}' "$WORK/samples.txt")
SAMPLES=$(wc -l <"$WORK/samples.txt")
IDLE_FD=$(find "/proc/$SLUICE_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
IDLE_RSS=$(awk '/^VmRSS:/ {print $2}' "/proc/$SLUICE_PID/status" 2>/dev/null || echo 0)

# Stop sluice (flushes the access log), then count what each side saw.
kill -TERM "$SLUICE_PID" 2>/dev/null || true
SLUICE_RC=0
wait "$SLUICE_PID" || SLUICE_RC=$?
A1=$(upstream_requests "$A_PORT")
B1=$(upstream_requests "$B_PORT")
UP_A=$((A1 - A0 - 1)) # not the second /stats call
UP_B=$((B1 - B0 - 1))
UP=$((UP_A + UP_B))
LOG_LINES=$(wc -l <"$WORK/access.log")
LOG_200=$(awk '$1 == 200 && $3 == "-"' "$WORK/access.log" | wc -l)
LOG_B=$(awk -v b="$B" '$2 == b' "$WORK/access.log" | wc -l)

CLIENT_LINE=$(grep '^SOAK_CLIENT' "$WORK/wrk.out" || true)
field() { echo "$CLIENT_LINE" | sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }
C_REQ=$(field requests)
C_BAD=$(field non2xx)
C_SOCK=$(($(field connect) + $(field read) + $(field write) + $(field timeout)))
SECONDS_RUN=$(field seconds)
RELOADS=$(grep -c '^reload' "$WORK/flaps.txt" || true)
DRAINS=$(grep -c '^drain' "$WORK/flaps.txt" || true)
FLAPS_BAD=$(grep -vc ' 200$' "$WORK/flaps.txt" || true)
SANITIZER=$(grep -cE 'Sanitizer|runtime error:' "$WORK/sluice.err" || true)

echo "soak figures:"
echo "  wall time            $(awk -v a="$T0" -v b="$T1" 'BEGIN {printf "%.1f s", b - a}') (wrk: ${SECONDS_RUN:-?} s," \
  "$(awk -v n="${C_REQ:-0}" -v s="${SECONDS_RUN:-0}" 'BEGIN {if (s > 0) printf "%.0f", n / s; else print "?"}') req/s)"
echo "  requests             client $C_REQ, upstreams $UP (a $UP_A, b $UP_B), access-log lines $LOG_LINES (to b $LOG_B)"
echo "  reloads / drains     $RELOADS / $DRAINS (non-200 answers: $FLAPS_BAD)"
echo "  samples              $SAMPLES every ${SAMPLE_EVERY}s"
echo "  open FDs             warm $W_FD (at $W_N served), final $F_FD (at $F_N served), max $MAX_FD, idle after $IDLE_FD"
echo "  RSS kB               warm $W_RSS, final $F_RSS, max $MAX_RSS, idle after $IDLE_RSS"
echo "checks:"
check "$(is '[ "$WRK_RC" = 0 ] && [ -n "$CLIENT_LINE" ]')" "client ran" "wrk exit $WRK_RC"
check "$(is '[ "${C_REQ:-0}" = "$REQUESTS" ]')" "client completed every request" "$C_REQ of $REQUESTS"
check "$(is '[ "${C_BAD:-1}" = 0 ] && [ "$C_SOCK" = 0 ]')" "0 failed requests" \
  "non-2xx ${C_BAD:-?}, socket errors $C_SOCK"
check "$(is '[ "$UP" = "$REQUESTS" ]')" "upstream count == client count" "$UP vs $REQUESTS"
check "$(is '[ "$LOG_LINES" = "$REQUESTS" ]')" "access-log lines == client count" "$LOG_LINES vs $REQUESTS"
check "$(is '[ "$LOG_200" = "$LOG_LINES" ]')" "every logged request 200 without flags" "$LOG_200 of $LOG_LINES"
check "$(is '[ "$RELOADS" -ge 1 ] && [ "$FLAPS_BAD" = 0 ]')" "reloads and drains answered 200" \
  "$RELOADS reloads, $DRAINS drains, $FLAPS_BAD failed"
if [ -n "${W_FD:-}" ] && [ -n "${F_FD:-}" ] && [ "$W_N" != "$F_N" ]; then
  check "$(is '[ "$F_FD" -le $((W_FD + FD_TOL)) ]')" "FD count flat" "final $F_FD <= warm $W_FD + $FD_TOL"
  RSS_TOL=$((W_RSS * RSS_TOL_PCT / 100))
  [ "$RSS_TOL" -ge 4096 ] || RSS_TOL=4096
  check "$(is '[ "$F_RSS" -le $((W_RSS + RSS_TOL)) ]')" "RSS flat" "final $F_RSS kB <= warm $W_RSS + $RSS_TOL kB"
else
  check 0 "FD and RSS sampled after warm-up and at the end" "too few samples ($SAMPLES): raise -n"
fi
check "$(is '[ "$SLUICE_RC" = 0 ] && [ "$SANITIZER" = 0 ]')" "sluice exited cleanly" \
  "exit $SLUICE_RC, sanitizer reports $SANITIZER"
if [ "$fail" != 0 ]; then
  echo "soak: FAILED (sluice stderr tail below)"
  tail -20 "$WORK/sluice.err"
  exit 1
fi
echo "soak: passed"
