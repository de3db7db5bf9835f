#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds sluice and runs it on examples/quickstart.json in
# front of the bundled demo upstream. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DSLUICE_BUILD_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)"
./build/tools/sluice-test-upstream --listen 127.0.0.1:8081 --name demo >/dev/null &
UP=$!
trap 'kill $UP 2>/dev/null; kill $SL 2>/dev/null; wait 2>/dev/null' EXIT INT TERM
./build/sluice run -c examples/quickstart.json &
SL=$!
sleep 1
cat <<'MSG'

sluice listens on 127.0.0.1:8080 (demo upstream on 127.0.0.1:8081). Try:
  curl -i http://127.0.0.1:8080/
  curl -i http://127.0.0.1:8080/api/echo
  curl -i -X POST --data 'hello' http://127.0.0.1:8080/api/echo
  curl -i http://127.0.0.1:8080/old/page
  curl -i http://127.0.0.1:8080/nowhere/../api/echo
Ctrl-C stops it.
MSG
wait $SL
