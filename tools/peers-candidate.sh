#!/usr/bin/env bash
# Candidate command for the team's peers.sh harness (see BENCHMARKS.md): writes a one-route config and runs sluice in the
# foreground. Usage (from peers.sh): tools/peers-candidate.sh PORT UPSTREAM_PORT WORKERS [chain]
#   chain: "router" (default) or "router+access_log" (JSON access log to a file in $TMPDIR)
# Env: SLUICE_ADMIN_PORT: also serve the admin API on 127.0.0.1:PORT (metrics; off by default).
#      SLUICE_BALANCE: the listener's connection_balance ("kernel", the default, or "exact").
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${SLUICE_BENCH_BIN:-$here/build-rel/sluice}
port=$1 upstream=$2 workers=$3 chain=${4:-router}
# Each run's config and access log live in a folder of their own under $parent, holding the
# PID that becomes sluice's (exec below, so nothing is left to clean up after it). Folders of
# runs whose sluice is gone are removed here: at ~50 MB of log per peers.sh round they once
# filled 37 GB of /tmp. A folder under a minute old is left alone (its run may be starting now).
parent=${TMPDIR:-/tmp}/sluice-peers-candidate
mkdir -p "$parent"
find "$parent" -mindepth 1 -maxdepth 1 -type d -mmin +1 -print0 |
  while IFS= read -r -d '' old; do
    pid=$(cat "$old/pid" 2> /dev/null || true)
    if [ -z "$pid" ] || ! kill -0 "$pid" 2> /dev/null; then rm -rf "$old"; fi
  done
dir=$(mktemp -d "$parent/run.XXXXXX")
echo $$ > "$dir/pid"
log_filter=""
if [ "$chain" = "router+access_log" ]; then
  log_filter=", {\"type\": \"access_log\", \"config\": {\"path\": \"$dir/access.log\", \"format\": \"json\"}}"
fi
admin=""
if [ -n "${SLUICE_ADMIN_PORT:-}" ]; then
  admin="\"admin\": {\"address\": \"127.0.0.1:$SLUICE_ADMIN_PORT\"},"
fi
balance=${SLUICE_BALANCE:-kernel}
cat > "$dir/sluice.json" <<JSON
{"workers": $workers, $admin "shutdown": {"pre_drain_ms": 0, "drain_ms": 1000, "teardown_ms": 1000},
 "listeners": [{"name": "bench", "address": "127.0.0.1:$port", "connection_balance": "$balance",
   "filters": [{"type": "router", "config": {"virtual_hosts": [{"name": "all", "domains": ["*"],
     "routes": [{"match": {"prefix": "/"}, "cluster": "up"}]}]}}$log_filter]}],
 "clusters": [{"name": "up", "endpoints": [{"address": "127.0.0.1:$upstream"}]}]}
JSON
exec "$bin" run -c "$dir/sluice.json" --log-level warn
