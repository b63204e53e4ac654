#!/usr/bin/env bash
# poolscope-widget-libpq as scripts/bench.sh runs it, on a database of its own
# on the PostgreSQL fixture: after poolscope-load has seeded the widget's
# tables it renders the widget (60 reads per render) and prints the fields
# bench_report reads; on an unseeded database it says what is missing; with a
# wrong password it fails naming the connection, and that password is in none
# of its output.
#
#   widget_libpq_test.sh SERVER_ENV POOLSCOPE_LOAD POOLSCOPE_WIDGET_LIBPQ
set -euo pipefail
env_file=$1 load=$2 widget=$3
value() { sed -n "s/^$1=//p" "$env_file"; }
export PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE
PGHOST=$(value host) PGPORT=$(value port) PGUSER=$(value user) PGPASSWORD=$(value password)
db="t_bench_widget_$$"
PGDATABASE=postgres psql -qAtc "CREATE DATABASE $db"
work=$(mktemp -d)
cleanup() {
  PGDATABASE=postgres psql -qAtc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
  rm -rf "$work"
}
trap cleanup EXIT
PGDATABASE=$db
fail() { echo "FAIL: $*" >&2; exit 1; }

# Unseeded: a clear error, exit 1.
if "$widget" --threads 1 --seconds 0.2 --warmup 0 >"$work/out" 2>"$work/err"; then
  fail "succeeded on a database without the widget's tables"
fi
grep -q 'relation "transactions" does not exist' "$work/err" || fail "unclear error: $(cat "$work/err")"

DATABASE_URL="postgresql://$PGUSER:$PGPASSWORD@$PGHOST:$PGPORT/$db?sslmode=disable" \
  "$load" --mode pool --threads 1 --duration 0.5 --no-progress >"$work/seed.log" 2>&1 ||
  { cat "$work/seed.log" >&2; fail "poolscope-load could not seed"; }

"$widget" --threads 2 --seconds 0.5 --warmup 0.1 >"$work/out" 2>"$work/err" ||
  fail "exit $?: $(cat "$work/err")"
python3 - "$work/out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["impl"] == "libpq" and r["threads"] == 2 and r["pool_size"] == 2, r
assert r["settings_reads_per_render"] == 60, r
assert r["renders"] >= 1 and abs(r["renders_per_s"] - r["renders"] / 0.5) < 1e-6, r
assert 0 < r["render_latency_p50_s"] <= r["render_latency_p99_s"] < 5, r
print("rendered", r["renders"], "times,", r["renders_per_s"], "renders/s")
PY

secret="wrong-Secret-$$"
if PGPASSWORD=$secret "$widget" --threads 1 --seconds 0.2 >"$work/out" 2>"$work/err"; then
  fail "succeeded with a wrong password"
fi
grep -q '^poolscope-widget-libpq: connect: .*password authentication failed' "$work/err" ||
  fail "unclear error: $(cat "$work/err")"
if grep -qF "$secret" "$work/out" "$work/err"; then fail "the password is in the output"; fi
echo "ok"
