#!/usr/bin/env bash
# ctest custom_distro_build: configure a custom distro of sluice with only router + access_log
# built in plus two out-of-tree filter folders linked statically
# (-DSLUICE_EXTRA_FILTERS=extensions/header_rewrite;extensions/ip_allowlist), build only the
# `sluice` target, and check `sluice filters` and configs that use the linked-in filters
# (no "module" key). The build folder stays under the main build dir so that a rerun is
# incremental (this test compiles the core again: slow the first time on 2 cores).
# Usage: distro_test.sh SOURCE_DIR BUILD_DIR BUILD_TYPE
set -euo pipefail
src=$(cd "$1" && pwd)
dir=$(cd "$2" && pwd)/test-distro
type=${3:-RelWithDebInfo}
generator=()
if command -v ninja > /dev/null; then generator=(-G Ninja); fi
cmake -S "$src" -B "$dir" "${generator[@]}" -DCMAKE_BUILD_TYPE="$type" \
  -DSLUICE_BUILD_TESTS=OFF -DSLUICE_FILTERS="router;access_log" \
  -DSLUICE_EXTRA_FILTERS="$src/extensions/header_rewrite;extensions/ip_allowlist" \
  > "$dir.configure.log" 2>&1 || { cat "$dir.configure.log"; exit 1; }
cmake --build "$dir" --target sluice -j 2
bin=$dir/sluice
"$bin" filters | tee "$dir.filters.txt"
got=$(cut -f1 "$dir.filters.txt" | sort | tr '\n' ' ')
test "$got" = "access_log header_rewrite ip_allowlist router " \
  || { echo "unexpected filter set: $got"; exit 1; }
grep -q "^header_rewrite	built-in" "$dir.filters.txt"
"$bin" version | grep -q "header_rewrite"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sluice-distro.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/ok.json" <<'JSON'
{"listeners": [{"name": "web", "address": "127.0.0.1:0", "filters": [
  {"type": "ip_allowlist", "config": {"allow": ["127.0.0.0/8", "::1"]}},
  {"type": "header_rewrite", "config": {"request": {"set": {"x-client": "${client_ip}"}}}},
  {"type": "router", "config": {"virtual_hosts": [{"name": "all", "domains": ["*"],
    "routes": [{"match": {"prefix": "/"}, "cluster": "up"}]}]}}]}],
 "clusters": [{"name": "up", "endpoints": [{"address": "127.0.0.1:9"}]}]}
JSON
"$bin" validate -c "$tmp/ok.json"
sed 's/127.0.0.0\/8/127.0.0.1\/8/' "$tmp/ok.json" > "$tmp/bad.json"
if out=$("$bin" validate -c "$tmp/bad.json" 2>&1); then
  echo "a bad ip_allowlist config validated"; exit 1
fi
echo "$out" | grep -q "/listeners/0/filters/0/config/allow/0: host bits are set" \
  || { echo "unexpected error output: $out"; exit 1; }
echo "distro ok"
