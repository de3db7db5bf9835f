#!/usr/bin/env bash
# Resident memory with N idle keep-alive client connections (default 10,000), sluice against
# nginx, in one run: both proxy to the same sluice-test-upstream, each gets N connections that
# made one request and stay open, then VmRSS is read (nginx: master + worker).
#   tools/bench-idle-rss.sh [BUILD_DIR] [N]
# Needs nginx (Debian: apt-get install nginx-light). Raises ulimit -n as far as the hard limit.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
N=${2:-10000}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt $((N + 200)) ]; then
  echo "bench-idle-rss: ulimit -n is $(ulimit -n), need $((N + 200))" >&2
  exit 1
fi
DIR=$(mktemp -d /tmp/sluice-idle-rss.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$DIR"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

UP=$(free_port)
"$BUILD/tools/sluice-test-upstream" --listen "127.0.0.1:$UP" --name up >"$DIR/up.log" 2>&1 &
pids+=($!)

rss_kib() { # pid...
  local t=0
  for p in "$@"; do t=$((t + $(awk '/^VmRSS:/{print $2}' "/proc/$p/status"))); done
  echo "$t"
}

# Opens N connections to 127.0.0.1:$1, one GET each (keep-alive), keeps them open, prints
# "ready" and waits for stdin to close.
CLIENT='
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
req = b"GET /idle HTTP/1.1\r\nHost: idle.test\r\n\r\n"
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(req)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            sys.exit("connection %d closed early" % i)
        data += chunk
    socks.append(s)
print("ready", flush=True)
sys.stdin.read()
'

measure() { # name port pid...
  local name=$1 port=$2
  shift 2
  local base
  base=$(rss_kib "$@")
  coproc CL { python3 -c "$CLIENT" "$port" "$N"; }
  local line
  read -r line <&"${CL[0]}"
  [ "$line" = ready ] || { echo "client failed for $name" >&2; exit 1; }
  local busy
  busy=$(rss_kib "$@")
  printf '| %s | %d | %.1f | %.1f | %.2f |\n' "$name" "$N" "$(echo "$base/1024" | bc -l)" \
    "$(echo "$busy/1024" | bc -l)" "$(echo "($busy-$base)/$N" | bc -l)"
  eval "exec ${CL[1]}>&-"
  wait "$CL_PID" 2>/dev/null || true
}

echo "| proxy | idle connections | RSS before MiB | RSS with connections MiB | KiB per connection |"
echo "|---|---:|---:|---:|---:|"

# sluice: one worker, a router to the upstream.
SP=$(free_port)
cat >"$DIR/sluice.json" <<JSON
{"workers": 1,
 "listeners": [{"name": "web", "address": "127.0.0.1:$SP",
   "filters": [{"type": "router", "config": {"virtual_hosts": [{"name": "all", "domains": ["*"],
     "routes": [{"match": {"prefix": "/"}, "cluster": "up"}]}]}}]}],
 "clusters": [{"name": "up", "endpoints": [{"address": "127.0.0.1:$UP"}]}]}
JSON
"$BUILD/sluice" run -c "$DIR/sluice.json" --log-level warn >"$DIR/sluice.log" 2>&1 &
SPID=$!
pids+=($SPID)
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$SP) 2>/dev/null && break; sleep 0.05; done
measure sluice "$SP" "$SPID"
kill "$SPID"

# nginx: one worker, keep-alive to the same upstream.
NP=$(free_port)
mkdir -p "$DIR/nginx/logs"
cat >"$DIR/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $DIR/nginx/nginx.pid;
error_log $DIR/nginx/logs/error.log warn;
worker_rlimit_nofile $((N * 2 + 200));
events { worker_connections $((N * 2 + 100)); }
http {
  access_log off;
  keepalive_timeout 3600s;
  keepalive_requests 100000;
  upstream up { server 127.0.0.1:$UP; keepalive 64; }
  server {
    listen 127.0.0.1:$NP;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF
"$NGINX" -p "$DIR/nginx" -c "$DIR/nginx/nginx.conf" 2>"$DIR/nginx/stderr.log" &
NPID=$!
pids+=($NPID)
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$NP) 2>/dev/null && break; sleep 0.05; done
NW=$(pgrep -P "$NPID" | head -1)
measure nginx "$NP" "$NPID" "$NW"
