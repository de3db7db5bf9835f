#!/usr/bin/env bash
# User-space instructions per proxied request, counted by callgrind (noise-free, unlike time).
# sluice (one worker) runs under valgrind --tool=callgrind in front of sluice-test-upstream while
# one keep-alive client sends N sequential `GET /healthz`; run for N=2000 and N=6000 and
#   instructions/request = (Ir(6000) - Ir(2000)) / 4000
# so start-up and shutdown cancel out. Every thread of the process is counted (the access log's
# writer too). sluice runs with `--io epoll`: valgrind does not follow io_uring's shared rings (the
# kernel's writes into them are invisible to it), and under it `--io auto` hangs on the first turn.
#   tools/bench-instructions.sh [BUILD_DIR] [router|router+access_log]
# BUILD_DIR defaults to build-rel (a Release build). Needs valgrind and python3.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build-rel}
CHAIN=${2:-router}
command -v valgrind >/dev/null || { echo "bench-instructions: needs valgrind" >&2; exit 1; }
DIR=$(mktemp -d /tmp/sluice-instr.XXXXXX)
# KEEP=1 keeps the folder (callgrind's files cg.2000 and cg.6000, for callgrind_annotate).
trap 'if [ -n "${KEEP:-}" ]; then echo "kept $DIR" >&2; else rm -rf "$DIR"; fi' EXIT

# One measurement: prints the total Ir of the sluice process for N requests.
measure() {
  local n=$1 up px extra="" upid vpid
  up=$((20000 + RANDOM % 10000))
  px=$((up + 1))
  if [ "$CHAIN" = "router+access_log" ]; then
    extra=", {\"type\": \"access_log\", \"config\": {\"path\": \"$DIR/access.log\", \"format\": \"json\"}}"
  fi
  cat >"$DIR/s.json" <<JSON
{"workers": 1, "shutdown": {"pre_drain_ms": 0, "drain_ms": 1000, "teardown_ms": 1000},
 "listeners": [{"name": "bench", "address": "127.0.0.1:$px",
   "filters": [{"type": "router", "config": {"virtual_hosts": [{"name": "all", "domains": ["*"],
     "routes": [{"match": {"prefix": "/"}, "cluster": "up"}]}]}}$extra]}],
 "clusters": [{"name": "up", "endpoints": [{"address": "127.0.0.1:$up"}]}]}
JSON
  "$BUILD/tools/sluice-test-upstream" --listen "127.0.0.1:$up" >/dev/null 2>&1 &
  upid=$!
  valgrind --tool=callgrind --callgrind-out-file="$DIR/cg.$n" "$BUILD/sluice" run -c "$DIR/s.json" \
    --io epoll --log-level warn >"$DIR/log.$n" 2>&1 &
  vpid=$!
  python3 - "$px" "$n" <<'PY'
import re, socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
for _ in range(600):
    try:
        s = socket.create_connection(("127.0.0.1", port))
        break
    except OSError:
        time.sleep(0.1)
s.settimeout(60)  # a proxy that stops answering fails the run instead of hanging it
req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
for _ in range(n):
    s.sendall(req)
    buf = b""
    while True:
        buf += s.recv(65536)
        h = buf.find(b"\r\n\r\n")
        if h >= 0:
            m = re.search(rb"content-length: *(\d+)", buf[:h], re.I)
            if len(buf) >= h + 4 + int(m.group(1)):
                break
s.close()
PY
  kill -TERM "$vpid" 2>/dev/null || true
  wait "$vpid" || true
  kill "$upid" 2>/dev/null || true
  wait "$upid" 2>/dev/null || true
  grep "I   refs" "$DIR/log.$n" | awk '{gsub(",", "", $4); print $4}'
}

a=$(measure 2000)
b=$(measure 6000)
echo "chain=$CHAIN Ir(2000)=$a Ir(6000)=$b instructions/request=$(((b - a) / 4000))"
