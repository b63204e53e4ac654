#!/usr/bin/env bash
# The installed package as outside projects use it.
#
#   run.sh install BUILD_DIR SCRATCH   installs into SCRATCH/installed, checks that no
#                                      installed text file names the build machine's
#                                      paths, then moves the prefix to SCRATCH/moved
#   run.sh cmake-pool SOURCE SCRATCH   find_package(poolscope COMPONENTS pool), with every
#                                      other component's dependencies made unfindable
#   run.sh cmake-all SOURCE SCRATCH    find_package(poolscope), every component
#   run.sh pkg-config SOURCE SCRATCH   both programs built with pkg-config alone
#
# Every consumer builds against the moved prefix: the package is relocatable
# or they fail. SOURCE is tests/consumer.
set -euo pipefail
step=${1:?usage: run.sh install|cmake-pool|cmake-all|pkg-config DIR SCRATCH}
dir=${2:?} scratch=${3:?}
prefix="$scratch/moved"

case "$step" in
  install)
    source_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    rm -rf "$scratch"
    mkdir -p "$scratch"
    cmake --install "$dir" --prefix "$scratch/installed" >/dev/null
    # Text files only: the archives' debug information names the sources.
    bad=$(grep -rIl -e "$scratch/installed" -e "$(cd "$dir" && pwd)" -e "$source_root" \
          -e "/usr/lib/gcc/" "$scratch/installed" || true)
    if [[ -n "$bad" ]]; then
      echo "installed files name absolute paths of the build:" >&2
      echo "$bad" >&2
      grep -rIn -e "$scratch/installed" -e "$(cd "$dir" && pwd)" -e "$source_root" \
        -e "/usr/lib/gcc/" "$scratch/installed" | head -5 >&2
      exit 1
    fi
    mv "$scratch/installed" "$prefix"
    ls "$prefix/share/poolscope/grafana/dashboard.json" \
       "$prefix/share/poolscope/grafana/provisioning/dashboards/poolscope.yaml" \
       "$prefix/share/poolscope/grafana/provisioning/datasources/prometheus.yaml" \
       "$prefix/share/poolscope/prometheus/poolscope.rules.yml" >/dev/null
    echo "consumer: installed, relocated to $prefix"
    ;;
  cmake-pool)
    build="$scratch/cmake-pool"
    rm -rf "$build"
    disabled=()
    for pkg in spdlog prometheus-cpp CURL nlohmann_json civetweb GccBacktrace ZLIB; do
      disabled+=("-DCMAKE_DISABLE_FIND_PACKAGE_$pkg=TRUE")
    done
    cmake -S "$dir/pool" -B "$build" -DCMAKE_PREFIX_PATH="$prefix" "${disabled[@]}" >/dev/null
    cmake --build "$build" >/dev/null
    "$build/consumer"
    ;;
  cmake-all)
    build="$scratch/cmake-all"
    rm -rf "$build"
    cmake -S "$dir/all" -B "$build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
    cmake --build "$build" >/dev/null
    "$build/consumer"
    ;;
  pkg-config)
    build="$scratch/pkg-config"
    rm -rf "$build"
    mkdir -p "$build"
    pc=$(find "$prefix" -name poolscope.pc)
    export PKG_CONFIG_PATH="$(dirname "$pc")"
    # shellcheck disable=SC2046 # the flags are words
    c++ -std=c++20 "$dir/pool/main.cc" -o "$build/pool" $(pkg-config --cflags --libs poolscope)
    # shellcheck disable=SC2046
    c++ -std=c++20 "$dir/all/main.cc" -o "$build/all" \
      $(pkg-config --cflags --libs poolscope-exporters poolscope-tracing poolscope-cache)
    "$build/pool"
    "$build/all"
    ;;
  *) echo "usage: run.sh install|cmake-pool|cmake-all|pkg-config DIR SCRATCH" >&2; exit 2 ;;
esac
