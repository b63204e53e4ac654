#!/usr/bin/env bash
# Measures poolscope on this machine and writes docs/benchmarks.md: the
# micro-benchmarks (poolscope-bench, side by side with soci::connection_pool
# and a mutex + unordered_map), then poolscope-load --compare on an embedded
# SQLite file and on a throwaway PostgreSQL server. Takes a few minutes.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$root/build-release"

bash "$root/scripts/install-deps.sh" all
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j2 --target poolscope-bench poolscope-load poolscope-bench-report poolscope-free-port

work=$(mktemp -d /tmp/poolscope-bench.XXXXXX)
chmod 755 "$work"
cleanup() {
  bash "$root/tests/fixtures/pg_server.sh" stop "$work/pg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== poolscope-bench (5 repetitions of each)"
"$build/bench/poolscope-bench" --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
  --benchmark_min_time=0.5 --benchmark_out="$work/bench.json" --benchmark_out_format=json

load="$build/tools/poolscope_load/poolscope-load"
echo "== poolscope-load --compare, SQLite"
(cd "$work" && "$load" --compare --duration 5 --no-progress --json "$work/compare-sqlite.json" 2>/dev/null)

echo "== poolscope-load --compare, PostgreSQL"
bash "$root/tests/fixtures/pg_server.sh" start "$work/pg" "$build/tests/poolscope-free-port"
pg_value() { sed -n "s/^$1=//p" "$work/pg/server.env"; }
pg_url="postgresql://$(pg_value user):$(pg_value password)@$(pg_value host):$(pg_value port)/$(pg_value dbname)?sslmode=disable"
"$load" --db "$pg_url" --compare --duration 5 --no-progress --json "$work/compare-postgres.json" 2>/dev/null

mkdir -p "$root/docs"
"$build/tools/bench_report/poolscope-bench-report" --bench "$work/bench.json" \
  --sqlite "$work/compare-sqlite.json" --postgres "$work/compare-postgres.json" \
  --commands "bash scripts/bench.sh" > "$root/docs/benchmarks.md"
echo "wrote docs/benchmarks.md"
