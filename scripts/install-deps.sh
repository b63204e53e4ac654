#!/usr/bin/env bash
# Installs what poolscope needs, from Debian 12 packages, skipping what is
# already there. Runs apt-get as root, or through sudo.
#
#   scripts/install-deps.sh build   compilers and libraries (enough for the demo)
#   scripts/install-deps.sh bench   the same plus what poolscope-bench compares
#                                   against (TBB's concurrent_hash_map)
#   scripts/install-deps.sh all     build and bench, plus the servers the tests
#                                   start (PostgreSQL, Prometheus and its promtool,
#                                   Redis, PgBouncer) and what the tests compile
#                                   with besides the build's compiler (clang 14)
#   scripts/install-deps.sh ci      all, plus clang 16 (CI's second build, with
#                                   -Wthread-safety and libFuzzer) and clang-format 16
set -euo pipefail

what=${1:-all}
if [[ "$what" != "build" && "$what" != "bench" && "$what" != "all" && "$what" != "ci" ]]; then
  echo "usage: install-deps.sh build|bench|all|ci" >&2
  exit 2
fi
libraries=(
  build-essential cmake ninja-build pkg-config
  libsoci-dev libboost-dev libpq-dev libsqlite3-dev
  prometheus-cpp-dev libspdlog-dev libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libcli11-dev
  libhiredis-dev
)
bench=(libtbb-dev libhikaricp-java libpostgresql-jdbc-java python3-sqlalchemy python3-psycopg2 openjdk-17-jdk-headless valgrind)
servers=(postgresql prometheus redis-server redis-tools pgbouncer)
test_tools=(clang-14 python3)
ci=(clang-16 libclang-rt-16-dev clang-format-16)

missing() {
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
  done
}

apt_install() {
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    if ! command -v sudo >/dev/null; then
      echo "install-deps: installing $* needs root, and sudo is not installed;" \
           "run this script as root (or install sudo)" >&2
      exit 1
    fi
    sudo=(sudo)
  fi
  if [[ -z "${POOLSCOPE_APT_UPDATED:-}" ]]; then
    "${sudo[@]}" apt-get update -qq
    export POOLSCOPE_APT_UPDATED=1
  fi
  # As an argument of sudo: sudo resets the environment, so a variable set
  # in front of it would not reach apt-get.
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

mapfile -t need < <(missing "${libraries[@]}")
if [[ ${#need[@]} -gt 0 ]]; then
  echo "install-deps: installing ${need[*]}"
  apt_install "${need[@]}"
fi

if [[ "$what" != "build" ]]; then
  mapfile -t need < <(missing "${bench[@]}")
  if [[ ${#need[@]} -gt 0 ]]; then
    echo "install-deps: installing ${need[*]}"
    apt_install "${need[@]}"
  fi
fi

if [[ "$what" == "all" || "$what" == "ci" ]]; then
  mapfile -t need < <(missing "${servers[@]}" "${test_tools[@]}")
  if [[ ${#need[@]} -gt 0 ]]; then
    echo "install-deps: installing servers and test tools ${need[*]}"
    apt_install --no-install-recommends "${need[@]}"
  fi
fi

if [[ "$what" == "ci" ]]; then
  mapfile -t need < <(missing "${ci[@]}")
  if [[ ${#need[@]} -gt 0 ]]; then
    echo "install-deps: installing ${need[*]}"
    apt_install --no-install-recommends "${need[@]}"
  fi
fi
