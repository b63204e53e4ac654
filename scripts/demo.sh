#!/usr/bin/env bash
# From a fresh Debian 12 machine to poolscope-load running: installs the
# packages, builds Release, and runs the dashboard-widget scenario on an
# embedded SQLite file (poolscope-demo.db in the current directory), whatever
# DATABASE_URL says: pass --db to run it elsewhere.
# Arguments go to poolscope-load, e.g. scripts/demo.sh --mode reuse --duration 10
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

bash "$root/scripts/install-deps.sh" build
cmake -S "$root" -B "$root/build-release" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DPOOLSCOPE_BUILD_TESTS=OFF >/dev/null
cmake --build "$root/build-release" -j2 --target poolscope-load
exec env -u DATABASE_URL "$root/build-release/tools/poolscope_load/poolscope-load" "$@"
