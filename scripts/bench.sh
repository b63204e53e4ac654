#!/usr/bin/env bash
# Measures poolscope side by side with soci::connection_pool, HikariCP and
# SQLAlchemy on this machine, and writes docs/benchmarks.md (raw results in
# docs/benchmarks-raw/, from which tools/bench_report regenerates it):
#
#   contention  threads looping checkout + return on a pool of 8 warm
#               PostgreSQL connections: poolscope untraced and traced
#               (poolscope-contention), soci::connection_pool (the same tool),
#               HikariCP (bench/hikari/, after a JIT warm-up), SQLAlchemy's
#               QueuePool (bench/sqlalchemy/)
#   widget      poolscope-load --mode pool on PostgreSQL with and without the
#               statement cache, beside HikariCP's and SQLAlchemy's widget
#               with a connection per read, the same thread count and pool,
#               and the floor under all of them: the same reads on libpq
#               alone, a connection per thread (poolscope-widget-libpq)
#   cache       poolscope-bench's cache-hit benchmarks (TtlCache, mutex +
#               unordered_map, TBB) and poolscope-cache-loop's plain loop
#   callgrind   instructions per acquire + release (untraced, traced, nested,
#               soci) and per cache hit, from the difference of two run lengths
#
# Every measured case runs once per round; rounds interleave the
# implementations (order rotated per round and thread count), so a slow
# spell of a shared machine falls on all of them rather than on one.
#
# The full run takes about 15 minutes on 2 cores. Overrides (environment):
#   BENCH_ROUNDS=3          rounds of every timed case
#   BENCH_SECONDS=2         seconds per contention run
#   BENCH_THREADS="1 2 8 16 32"
#   BENCH_POOL=8            connections in every pool
#   BENCH_WARMUP=10         HikariCP's JIT warm-up, seconds (contention and widget)
#   BENCH_PY_WARMUP=1       SQLAlchemy's warm-up, seconds
#   BENCH_WIDGET_SECONDS=5  seconds per widget run
#   BENCH_WIDGET_THREADS=8
#   BENCH_CACHE_PASSES=1000 walks over the 1,000 keys per thread, plain loop
#   BENCH_GBENCH_MIN_TIME=0.3  poolscope-bench --benchmark_min_time
#   BENCH_CALLGRIND=1       0 skips callgrind
#   BENCH_RAW=docs/benchmarks-raw  BENCH_REPORT=docs/benchmarks.md
# A smoke run (under 5 minutes):
#   BENCH_ROUNDS=1 BENCH_SECONDS=0.5 BENCH_WARMUP=2 BENCH_WIDGET_SECONDS=2 \
#     BENCH_GBENCH_MIN_TIME=0.05 BENCH_RAW=/tmp/raw BENCH_REPORT=/tmp/b.md bash scripts/bench.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$root/build-release"

rounds=${BENCH_ROUNDS:-3}
seconds=${BENCH_SECONDS:-2}
read -r -a thread_counts <<<"${BENCH_THREADS:-1 2 8 16 32}"
pool=${BENCH_POOL:-8}
warmup=${BENCH_WARMUP:-10}
py_warmup=${BENCH_PY_WARMUP:-1}
widget_seconds=${BENCH_WIDGET_SECONDS:-5}
widget_threads=${BENCH_WIDGET_THREADS:-8}
cache_passes=${BENCH_CACHE_PASSES:-1000}
gbench_min_time=${BENCH_GBENCH_MIN_TIME:-0.3}
callgrind=${BENCH_CALLGRIND:-1}
raw=${BENCH_RAW:-$root/docs/benchmarks-raw}
report=${BENCH_REPORT:-$root/docs/benchmarks.md}
started=$(date +%s)

bash "$root/scripts/install-deps.sh" all
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPOOLSCOPE_BUILD_TESTS=ON \
  -DPOOLSCOPE_BUILD_TOOLS=ON -DPOOLSCOPE_BUILD_BENCH=ON >/dev/null
cmake --build "$build" -j2 --target poolscope-bench poolscope-contention poolscope-cycles \
  poolscope-cache-loop poolscope-load poolscope-widget-libpq poolscope-bench-report \
  poolscope-free-port

work=$(mktemp -d /tmp/poolscope-bench.XXXXXX)
chmod 755 "$work"
cleanup() {
  bash "$root/tests/fixtures/pg_server.sh" stop "$work/pg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# HikariCP from Debian's jars, compiled with plain javac: no Maven, no download.
jars=/usr/share/java
classpath="$work/classes:$jars/HikariCP.jar:$jars/slf4j-api.jar:$jars/slf4j-nop.jar:$jars/postgresql.jar"
mkdir -p "$work/classes"
javac -d "$work/classes" -cp "$classpath" "$root/bench/hikari/HikariBench.java"
python=/usr/bin/python3  # Debian's, which has python3-sqlalchemy and python3-psycopg2

# One throwaway PostgreSQL for every implementation. Its address and
# password reach the harnesses through the environment, not argv (ps).
bash "$root/tests/fixtures/pg_server.sh" start "$work/pg" "$build/tests/poolscope-free-port"
pg_value() { sed -n "s/^$1=//p" "$work/pg/server.env"; }
export PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE
PGHOST=$(pg_value host) PGPORT=$(pg_value port) PGUSER=$(pg_value user)
PGPASSWORD=$(pg_value password) PGDATABASE=$(pg_value dbname)
export DATABASE_URL="postgresql://$PGUSER:$PGPASSWORD@$PGHOST:$PGPORT/$PGDATABASE?sslmode=disable"
export POOLSCOPE_BENCH_DB="$DATABASE_URL"

contention="$build/bench/poolscope-contention"
load="$build/tools/poolscope_load/poolscope-load"
cache_loop="$build/bench/poolscope-cache-loop"
widget_libpq="$build/bench/poolscope-widget-libpq"
rm -rf "$raw"
mkdir -p "$raw"

# Appends {"round": R, ...extra, "result": <one run's JSON>} to a JSON-lines
# file; the JSON may span lines (its strings cannot).
record() {
  local file=$1 round=$2 extra=$3 json=$4
  printf '{"round": %d, %s"result": %s}\n' "$round" "$extra" "$(tr -d '\n' <"$json")" >>"$file"
}

# Rotates the words after $1 left by $1 places.
rotate() {
  local by=$1
  shift
  local items=("$@") n=$# i
  for ((i = 0; i < n; i++)); do echo "${items[$(((i + by) % n))]}"; done
}

run_contention() {
  local impl=$1 threads=$2 out=$3
  case "$impl" in
    poolscope | traced | soci)
      "$contention" --impl "$impl" --threads "$threads" --pool "$pool" --seconds "$seconds" >"$out" ;;
    hikaricp)
      java -cp "$classpath" HikariBench contention --threads "$threads" --pool "$pool" \
        --seconds "$seconds" --warmup "$warmup" >"$out" ;;
    sqlalchemy)
      "$python" "$root/bench/sqlalchemy/sqlalchemy_bench.py" contention --threads "$threads" \
        --pool "$pool" --seconds "$seconds" --warmup "$py_warmup" >"$out" ;;
  esac
}

run_widget() {
  local impl=$1 out=$2
  case "$impl" in
    poolscope-cache | poolscope-nocache)
      local cache=128
      [[ "$impl" == poolscope-nocache ]] && cache=0
      "$load" --mode pool --threads "$widget_threads" --pool-size "$pool" --max-overflow 0 \
        --duration "$widget_seconds" --statement-cache "$cache" --no-progress --json "$out" \
        >"$work/load.log" 2>&1 || { cat "$work/load.log" >&2; return 1; } ;;
    hikaricp)
      java -cp "$classpath" HikariBench widget --threads "$widget_threads" --pool "$pool" \
        --seconds "$widget_seconds" --warmup "$warmup" >"$out" ;;
    libpq)
      "$widget_libpq" --threads "$widget_threads" --seconds "$widget_seconds" --warmup 1 >"$out" ;;
    sqlalchemy)
      "$python" "$root/bench/sqlalchemy/sqlalchemy_bench.py" widget --threads "$widget_threads" \
        --pool "$pool" --seconds "$widget_seconds" --warmup "$py_warmup" >"$out" ;;
  esac
}

# The widget's tables and rows, seeded once by poolscope-load (every later
# poolscope-load run seeds again, to the same rows).
"$load" --mode pool --threads 1 --duration 0.5 --no-progress >/dev/null 2>&1

impls=(poolscope traced soci hikaricp sqlalchemy)
widget_impls=(poolscope-cache poolscope-nocache hikaricp libpq sqlalchemy)
cache_impls=(ttl mutex tbb)
for ((round = 1; round <= rounds; round++)); do
  echo "== round $round of $rounds"
  for ((ti = 0; ti < ${#thread_counts[@]}; ti++)); do
    threads=${thread_counts[$ti]}
    while read -r impl; do
      echo "   contention $impl, $threads threads"
      run_contention "$impl" "$threads" "$work/one.json"
      record "$raw/contention.jsonl" "$round" "" "$work/one.json"
    done < <(rotate $((round + ti)) "${impls[@]}")
  done
  while read -r impl; do
    echo "   widget $impl, $widget_threads threads"
    run_widget "$impl" "$work/one.json"
    record "$raw/widget.jsonl" "$round" "\"impl\": \"$impl\", " "$work/one.json"
  done < <(rotate "$round" "${widget_impls[@]}")
  for threads in 1 2; do
    while read -r impl; do
      "$cache_loop" --impl "$impl" --threads "$threads" --passes "$cache_passes" >"$work/one.json"
      record "$raw/cache-loop.jsonl" "$round" "" "$work/one.json"
    done < <(rotate $((round + threads)) "${cache_impls[@]}")
  done
done

# Google Benchmark's own interleaving: repetitions in random order across
# the cache hits and the pool's acquire + release.
echo "== poolscope-bench: cache hits and acquire + release ($rounds repetitions, interleaved)"
"$build/bench/poolscope-bench" \
  --benchmark_filter='Hit|^BM_PoolAcquireRelease/|^BM_PoolAcquireReleaseTraced/|^BM_SociConnectionPoolSession/' \
  --benchmark_repetitions="$rounds" --benchmark_enable_random_interleaving=true \
  --benchmark_min_time="$gbench_min_time" --benchmark_out="$raw/bench.json" \
  --benchmark_out_format=json >/dev/null

# Instructions, the stable measure on a shared machine: each case at two
# lengths, so startup and teardown cancel in the difference. A million
# operations between them put the run-to-run noise near 0.1 instruction per
# operation (100,000 left it near 1, as much as a goal's margin).
if [[ "$callgrind" != 0 ]]; then
  echo "== callgrind"
  instructions() {
    valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" "$@" >/dev/null 2>&1
    sed -n 's/^summary: *//p; s/^totals: *//p' "$work/cg.out" | head -n 1 | awk '{print $1}'
  }
  for impl in poolscope traced nested soci; do
    a=$(instructions "$build/bench/poolscope-cycles" --impl "$impl" --cycles 10000)
    b=$(instructions "$build/bench/poolscope-cycles" --impl "$impl" --cycles 1010000)
    printf '{"case": "%s", "what": "acquire+release", "n1": 10000, "ir1": %s, "n2": 1010000, "ir2": %s}\n' \
      "$impl" "$a" "$b" >>"$raw/callgrind.jsonl"
  done
  for impl in "${cache_impls[@]}"; do
    a=$(instructions "$cache_loop" --impl "$impl" --threads 1 --passes 10)
    b=$(instructions "$cache_loop" --impl "$impl" --threads 1 --passes 1010)
    printf '{"case": "cache-%s", "what": "hit", "n1": 10000, "ir1": %s, "n2": 1010000, "ir2": %s}\n' \
      "$impl" "$a" "$b" >>"$raw/callgrind.jsonl"
  done
fi

# What ran, for the report's header.
server_version=$(psql -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d "$PGDATABASE" -Atc 'SHOW server_version' 2>/dev/null || echo unknown)
cat >"$raw/meta.json" <<EOF
{"date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)", "elapsed_s": $(($(date +%s) - started)),
 "load_average_end": "$(cut -d' ' -f1-3 /proc/loadavg)",
 "rounds": $rounds, "seconds": $seconds, "pool": $pool, "threads": "${thread_counts[*]}",
 "hikari_warmup_s": $warmup, "sqlalchemy_warmup_s": $py_warmup,
 "widget_seconds": $widget_seconds, "widget_threads": $widget_threads,
 "cache_passes": $cache_passes,
 "java": "$(java -version 2>&1 | head -n 1 | tr -d '"')",
 "hikaricp": "$(dpkg-query -W -f='${Version}' libhikaricp-java)",
 "pgjdbc": "$(dpkg-query -W -f='${Version}' libpostgresql-jdbc-java)",
 "sqlalchemy": "$("$python" -c 'import sqlalchemy; print(sqlalchemy.__version__)')",
 "psycopg2": "$("$python" -c 'import psycopg2; print(psycopg2.__version__.split()[0])')",
 "postgresql": "$server_version",
 "soci": "$(dpkg-query -W -f='${Version}' libsoci-dev)"}
EOF

# The command as run: the overrides that were set, then the script.
overrides=$(env | grep -E '^BENCH_[A-Z_]+=' | grep -vE '^BENCH_(RAW|REPORT)=' | sort | tr '\n' ' ' || true)
commands="${overrides}bash scripts/bench.sh"
"$build/tools/bench_report/poolscope-bench-report" --raw "$raw" --commands "$commands" >"$report"
echo "wrote $report (raw results in $raw), $(($(date +%s) - started)) s"
