#!/usr/bin/env bash
# Installs the SDK from BUILD_DIR into a temporary prefix and builds and runs consumer/ against it
# with find_package(twinhub). Usage: run.sh BUILD_DIR
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/twinhub-find-package.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cmake --install "$1" --prefix "$work/prefix" > "$work/install.log"
test -f "$work/prefix/include/twinhub/registry_manager.hpp"
# The public headers stand alone: nothing private is installed, and each header compiles with only
# the installed include directory and Boost.
test ! -e "$work/prefix/include/twinhub/common"
for h in "$work"/prefix/include/twinhub/*.hpp; do
  echo "#include <twinhub/$(basename "$h")>" | ${CXX:-c++} -std=c++20 -fsyntax-only -x c++ -I "$work/prefix/include" - \
    || { echo "public header $(basename "$h") does not stand alone"; exit 1; }
done
! grep -rl 'boost/asio\|boost/beast\|proton/' "$work/prefix/include/twinhub" || { echo "public headers include Asio/Beast/Proton"; exit 1; }
cmake -S "$here/consumer" -B "$work/build" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" > "$work/configure.log"
cmake --build "$work/build" > "$work/build.log" || { cat "$work/build.log"; exit 1; }
LD_LIBRARY_PATH="$work/prefix/lib:$work/prefix/lib64:${LD_LIBRARY_PATH:-}" "$work/build/consumer" | grep -qx 'ok h'
echo "find_package(twinhub) consumer built and ran"
