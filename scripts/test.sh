#!/usr/bin/env bash
# From a fresh Debian 12 machine to a passing test run: installs the packages
# and servers, builds (warnings are errors), and runs every suite with ctest.
# The ctest fixtures start throwaway servers on 127.0.0.1 and stop them.
# Arguments go to ctest, e.g. scripts/test.sh -R PoolTest
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${POOLSCOPE_BUILD_DIR:-$root/build}

# POOLSCOPE_BUILD_TYPE (default RelWithDebInfo) and POOLSCOPE_CMAKE_ARGS choose
# another build; CC / CXX another compiler (as .ci/run does with clang 16).
bash "$root/scripts/install-deps.sh" all
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE="${POOLSCOPE_BUILD_TYPE:-RelWithDebInfo}" \
  -DPOOLSCOPE_WERROR=ON \
  ${POOLSCOPE_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j2
cd "$build"
ctest --output-on-failure -j2 "$@"
