#!/usr/bin/env bash
# Builds the test suites under a sanitizer and runs them with ctest.
#   scripts/sanitize.sh thread     ThreadSanitizer      (build-tsan/)
#   scripts/sanitize.sh address    AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/)
# Further arguments go to ctest.
#
# The library's suites only: tools and benchmarks are not built, so
# tools_tests (poolscope-load end to end) and grafana_e2e_tests (the
# dashboard against Prometheus) do not run here; scripts/test.sh runs them.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
kind=${1:?usage: sanitize.sh thread|address [ctest args]}
shift
case "$kind" in
  thread) build="$root/build-tsan" ;;
  address) build="$root/build-asan" ;;
  *) echo "usage: sanitize.sh thread|address [ctest args]" >&2; exit 2 ;;
esac
bash "$root/scripts/install-deps.sh" all
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPOOLSCOPE_SANITIZE="$kind" \
  -DPOOLSCOPE_BUILD_TOOLS=OFF -DPOOLSCOPE_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j2
cd "$build"
echo "sanitize.sh: $kind sanitizer; tools_tests and grafana_e2e_tests are not part of this run" \
     "(poolscope-load is not built; scripts/test.sh runs them)"
# halt_on_error: a report fails the test that caused it.
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
export ASAN_OPTIONS="detect_leaks=1 ${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1 halt_on_error=1 ${UBSAN_OPTIONS:-}"
ctest --output-on-failure -j2 "$@"
