#!/usr/bin/env bash
# Installs the Debian 12 packages sluice builds, tests and benchmarks with.
# Idempotent and non-interactive; run as root or with sudo available.
# chromium, chromium-driver, python3-selenium: the status page test (test_status_page.py)
# drives a real headless Chromium (about 50 s of apt on a fresh machine).
set -euo pipefail
PKGS=(
  build-essential cmake ninja-build pkg-config git curl
  libuv1-dev node-llhttp android-libboringssl-dev nlohmann-json3-dev libhyperscan-dev
  libfmt-dev catch2 libbenchmark-dev libhiredis-dev redis-server
  python3 python3-jwt python3-cryptography python3-jsonschema prometheus libnss-wrapper wrk
  chromium chromium-driver python3-selenium
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: installed ${missing[*]}"
