#!/usr/bin/env bash
# The issue-12 bar from a peers.sh report (its "Per run" table): per round, the candidate's CPU
# µs/request and p99 against the cheaper of nginx and HAProxy in the same round, then the medians.
#   tools/peers-ratios.sh REPORT.md...
# A ratio below 1 is better than the best peer; the bar asks CPU <= 0.85 and p99 <= 1.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: tools/peers-ratios.sh REPORT.md..." >&2; exit 2; }
for f in "$@"; do
  awk -v file="$f" -F'|' '
    /^### Per run/ { table = 1; next }
    /^### / { table = 0 }
    table && $2 ~ /^ *[0-9]+ *$/ {
      run = $2 + 0; target = $3; gsub(/ /, "", target)
      cpu[run, target] = $10 + 0; p99[run, target] = $7 + 0
      if (target != "nginx" && target != "haproxy" && target != "direct") cand = target
      if (run > runs) runs = run
    }
    function median(a, n,    i, j, t) {
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    END {
      if (cand == "" || runs == 0) { printf "%s: no candidate rounds found\n", file; exit 1 }
      printf "%s: %s against min(nginx, HAProxy), per round:\n", file, cand
      for (r = 1; r <= runs; r++) {
        mc = cpu[r, "nginx"] < cpu[r, "haproxy"] ? cpu[r, "nginx"] : cpu[r, "haproxy"]
        mp = p99[r, "nginx"] < p99[r, "haproxy"] ? p99[r, "nginx"] : p99[r, "haproxy"]
        rc[r] = cpu[r, cand] / mc; rp[r] = p99[r, cand] / mp
        printf "  round %d: CPU %.1f / %.1f = %.2f   p99 %.3f / %.3f = %.2f\n", r, cpu[r, cand], mc, rc[r], p99[r, cand], mp, rp[r]
      }
      printf "  median: CPU %.2f, p99 %.2f\n", median(rc, runs), median(rp, runs)
    }' "$f"
done
