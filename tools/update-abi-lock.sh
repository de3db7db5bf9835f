#!/usr/bin/env bash
# Records the hash of api/include for the current ABI version in api/abi.lock.
# Run it only after bumping the ABI version (or while the version is unreleased).
set -euo pipefail
cd "$(dirname "$0")/.."
hash=$(cmake -DSRC="$PWD" -DPRINT=1 -P tools/abi-hash.cmake 2>&1 | tail -n1)
major=$(sed -n 's/^#define SLUICE_ABI_VERSION_MAJOR \([0-9]*\).*/\1/p' api/include/sluice/version.h)
minor=$(sed -n 's/^#define SLUICE_ABI_VERSION_MINOR \([0-9]*\).*/\1/p' api/include/sluice/version.h)
touch api/abi.lock
grep -v "^$major\.$minor " api/abi.lock > api/abi.lock.new || true
echo "$major.$minor $hash" >> api/abi.lock.new
mv api/abi.lock.new api/abi.lock
echo "api/abi.lock: $major.$minor $hash"
