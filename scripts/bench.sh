#!/usr/bin/env bash
# Measures poolscope on this machine and writes docs/benchmarks.md: the
# micro-benchmarks (poolscope-bench, side by side with soci::connection_pool
# and a mutex + unordered_map), then poolscope-load --compare on an embedded
# SQLite file and on a throwaway PostgreSQL server. Takes a few minutes.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$root/build-release"

bash "$root/scripts/install-deps.sh" all
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPOOLSCOPE_BUILD_TESTS=ON \
  -DPOOLSCOPE_BUILD_TOOLS=ON -DPOOLSCOPE_BUILD_BENCH=ON >/dev/null
cmake --build "$build" -j2 --target poolscope-bench poolscope-load poolscope-bench-report poolscope-free-port

work=$(mktemp -d /tmp/poolscope-bench.XXXXXX)
chmod 755 "$work"
cleanup() {
  bash "$root/tests/fixtures/pg_server.sh" stop "$work/pg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# Repetitions run in random order across benchmarks, so a slow spell of a
# shared machine lands on every benchmark alike rather than on whichever ran
# then; the report takes each benchmark's median.
echo "== poolscope-bench (10 repetitions of each, randomly interleaved)"
"$build/bench/poolscope-bench" --benchmark_repetitions=10 --benchmark_enable_random_interleaving=true \
  --benchmark_report_aggregates_only=true --benchmark_min_time=0.2 \
  --benchmark_out="$work/bench.json" --benchmark_out_format=json

load="$build/tools/poolscope_load/poolscope-load"
echo "== poolscope-load --compare, SQLite"
(cd "$work" && "$load" --compare --duration 5 --no-progress --json "$work/compare-sqlite.json" 2>/dev/null)

echo "== poolscope-load --compare, PostgreSQL"
bash "$root/tests/fixtures/pg_server.sh" start "$work/pg" "$build/tests/poolscope-free-port"
pg_value() { sed -n "s/^$1=//p" "$work/pg/server.env"; }
pg_url="postgresql://$(pg_value user):$(pg_value password)@$(pg_value host):$(pg_value port)/$(pg_value dbname)?sslmode=disable"
"$load" --db "$pg_url" --compare --duration 5 --no-progress --json "$work/compare-postgres.json" 2>/dev/null

# The raw results stay next to the report, so it can be regenerated (or
# checked) from exactly what was measured.
raw="$root/docs/benchmarks-raw"
mkdir -p "$raw"
cp "$work/bench.json" "$work/compare-sqlite.json" "$work/compare-postgres.json" "$raw/"
"$build/tools/bench_report/poolscope-bench-report" --bench "$raw/bench.json" \
  --sqlite "$raw/compare-sqlite.json" --postgres "$raw/compare-postgres.json" \
  --commands "bash scripts/bench.sh" > "$root/docs/benchmarks.md"
echo "wrote docs/benchmarks.md (raw results in docs/benchmarks-raw/)"
