#!/usr/bin/env bash
# ctest scaffold_new_filter: install sluice to a temporary prefix, check the installed package
# (headers, CMake package, pkg-config file, binary), then create a filter with tools/new-filter
# OUTSIDE the source tree for --lang c and --lang cpp, build it with
# find_package(sluice) (CMAKE_PREFIX_PATH=prefix), run its test and load it with the installed
# sluice (`sluice validate` on the generated example.json); then build two of the example
# extensions the same way, outside the sluice build.
# Usage: scaffold_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sluice-scaffold.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
generator=()
if command -v ninja > /dev/null; then generator=(-G Ninja); fi

cmake --install "$build" --prefix "$prefix" > "$tmp/install.log"
for f in include/sluice/filter.h include/sluice/version.h include/sluice/sdk/filter.hpp \
         include/sluice/sdk/config.hpp include/sluice/sdk/json.hpp bin/sluice; do
  test -e "$prefix/$f" || { echo "not installed: $f"; cat "$tmp/install.log"; exit 1; }
done
cfgdir=$(dirname "$(find "$prefix" -name sluiceConfig.cmake | head -n1)")
test -f "$cfgdir/sluiceConfigVersion.cmake" -a -f "$cfgdir/sluiceTargets.cmake" \
  -a -f "$cfgdir/SluiceModule.cmake" || { echo "incomplete CMake package in $cfgdir"; exit 1; }
pc=$(find "$prefix" -name sluice.pc | head -n1)
test -n "$pc" || { echo "sluice.pc not installed"; exit 1; }
cflags=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --cflags sluice | xargs)
test "$(cd "$prefix/include" && pwd -P)" = "$(cd "${cflags#-I}" && pwd -P)" \
  || { echo "pkg-config --cflags sluice gave '$cflags'"; exit 1; }
echo '#include "sluice/filter.h"
int main(void) { return SLUICE_ABI_VERSION_MAJOR == 1 ? 0 : 1; }' > "$tmp/pc.c"
cc -std=c99 -Wall -Werror $cflags "$tmp/pc.c" -o "$tmp/pc" && "$tmp/pc"
"$prefix/bin/sluice" version

for lang in c cpp; do
  name=scaffold_$lang
  "$src/tools/new-filter" "$name" --lang "$lang" --dir "$tmp/projects"
  proj=$tmp/projects/$name
  cmake -S "$proj" -B "$proj/build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$prefix" > "$tmp/configure-$lang.log" \
    || { cat "$tmp/configure-$lang.log"; exit 1; }
  cmake --build "$proj/build" -j 2
  ctest --test-dir "$proj/build" --output-on-failure
  (cd "$proj" && "$prefix/bin/sluice" validate -c example.json)
  "$prefix/bin/sluice" filters | grep -q "^router" # the installed binary runs its built-ins
done
# The example extensions build on their own against the installed package too.
for ext in header_rewrite ip_allowlist; do
  cmake -S "$src/extensions/$ext" -B "$tmp/ext-$ext" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$prefix" > "$tmp/configure-$ext.log" || { cat "$tmp/configure-$ext.log"; exit 1; }
  cmake --build "$tmp/ext-$ext" -j 2
  test -f "$tmp/ext-$ext/lib$ext.so" || { echo "lib$ext.so not built"; exit 1; }
done
# An existing folder is never overwritten.
if "$src/tools/new-filter" scaffold_c --lang c --dir "$tmp/projects" 2> /dev/null; then
  echo "new-filter overwrote an existing project"; exit 1
fi
echo "scaffold ok"
