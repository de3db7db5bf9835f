#!/usr/bin/env bash
# ctest scaffold_new_filter: install sluice to a temporary prefix, check the installed package
# (headers, CMake package, pkg-config file, binary, sluice-new-filter, writing-filters.md), then
# create a filter with the installed sluice-new-filter
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
         include/sluice/sdk/config.hpp include/sluice/sdk/json.hpp bin/sluice \
         bin/sluice-new-filter share/doc/sluice/writing-filters.md; do
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

# Scaffolds come from the INSTALLED script. The C project needs no C++ compiler: CMake is given
# one that cannot work, which a project that enabled CXX would fail on.
for lang in c cpp; do
  name=scaffold_$lang
  "$prefix/bin/sluice-new-filter" "$name" --lang "$lang" --dir "$tmp/projects"
  proj=$tmp/projects/$name
  no_cxx=()
  if [ "$lang" = c ]; then no_cxx=(-DCMAKE_CXX_COMPILER=/bin/false); fi
  cmake -S "$proj" -B "$proj/build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$prefix" "${no_cxx[@]}" > "$tmp/configure-$lang.log" \
    || { cat "$tmp/configure-$lang.log"; exit 1; }
  cmake --build "$proj/build" -j 2
  ctest --test-dir "$proj/build" --output-on-failure
  (cd "$proj" && "$prefix/bin/sluice" validate -c example.json)
  "$prefix/bin/sluice" filters | grep -q "^router" # the installed binary runs its built-ins
done
# The C filter with nothing but a C compiler and pkg-config (no CMake): module and test.
proj=$tmp/projects/scaffold_c
cc -std=c99 -Wall -Wextra -Werror -pedantic -fPIC -shared -fvisibility=hidden $cflags \
  "$proj/src/scaffold_c.c" -o "$tmp/libscaffold_c_pc.so"
cc -std=c99 -Wall -Wextra -Werror $cflags "$proj/test/scaffold_c_test.c" -o "$tmp/scaffold_c_pc_test" \
  -ldl
"$tmp/scaffold_c_pc_test" "$tmp/libscaffold_c_pc.so"
# The example extensions build on their own against the installed package too.
for ext in header_rewrite ip_allowlist; do
  cmake -S "$src/extensions/$ext" -B "$tmp/ext-$ext" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$prefix" > "$tmp/configure-$ext.log" || { cat "$tmp/configure-$ext.log"; exit 1; }
  cmake --build "$tmp/ext-$ext" -j 2
  test -f "$tmp/ext-$ext/lib$ext.so" || { echo "lib$ext.so not built"; exit 1; }
done
# An existing folder is never overwritten.
if "$prefix/bin/sluice-new-filter" scaffold_c --lang c --dir "$tmp/projects" 2> /dev/null; then
  echo "new-filter overwrote an existing project"; exit 1
fi
echo "scaffold ok"
