#!/usr/bin/env python3
"""SQLAlchemy's side of scripts/bench.sh: QueuePool (pool_size=8,
max_overflow=0) with psycopg2, on the same throwaway PostgreSQL as
poolscope's cases, printing one JSON object per run with the fields
poolscope-contention and poolscope-load print.

  contention  N threads loop pool.connect() / close() on 8 warm connections
              (the QueuePool checkout itself: a _ConnectionFairy out and back,
              reset-on-return rollback included, which psycopg2 skips on an
              idle connection): ns per cycle over all threads, the connect()
              latency distribution (p50 / p99 / max), fairness (fewest / most
              cycles of any thread).
  widget      poolscope-load's widget render (20 open transactions, an account
              per row reading api_key, api_secret, paper_account) with a
              connection per settings read, written as SQLAlchemy users write
              it: `with engine.connect() as conn: conn.execute(text(...))`.
              psycopg2 interpolates parameters client side: the server parses
              and plans every read.

  python3 sqlalchemy_bench.py contention --threads 16 --pool 8 --seconds 2
  python3 sqlalchemy_bench.py widget --threads 8 --pool 8 --seconds 5

The server comes from the environment, never the command line (ps shows it):
PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD.
"""

import argparse
import json
import math
import os
import threading
import time

import sqlalchemy
from sqlalchemy import text

BUCKETS = 4 * 42


class Histogram:
    """Latencies in buckets 2^(k/4) ns, as poolscope-contention counts them."""

    def __init__(self):
        self.counts = [0] * BUCKETS
        self.max = 0

    def add(self, ns):
        if ns > self.max:
            self.max = ns
        b = 0 if ns <= 0 else min(BUCKETS - 1, int(4.0 * math.log2(ns)) + 1)
        self.counts[b] += 1

    def merge(self, other):
        for i in range(BUCKETS):
            self.counts[i] += other.counts[i]
        self.max = max(self.max, other.max)

    def quantile(self, q):
        rank = int(q * sum(self.counts))
        seen = 0
        for i, c in enumerate(self.counts):
            seen += c
            if seen > rank:
                return 0.0 if i == 0 else 2.0 ** (i / 4.0)
        return float(self.max)


class PerThread:
    def __init__(self):
        self.cycles = 0
        self.waits = Histogram()
        self.renders = Histogram()


def engine(pool_size):
    url = sqlalchemy.engine.URL.create(
        "postgresql+psycopg2",
        username=os.environ.get("PGUSER", "postgres"),
        password=os.environ.get("PGPASSWORD") or None,
        host=os.environ.get("PGHOST", "127.0.0.1"),
        port=int(os.environ.get("PGPORT", "5432")),
        database=os.environ.get("PGDATABASE", "postgres"),
    )
    e = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.QueuePool,
                                 pool_size=pool_size, max_overflow=0)
    # Warm: every connection open before the clock starts.
    held = [e.pool.connect() for _ in range(pool_size)]
    for c in held:
        c.close()
    return e


def run(threads, warmup, seconds, body):
    """Runs body(mine) in a loop on threads workers for warmup seconds
    (dropped), then for seconds; returns each worker's measured figures."""
    out = [PerThread() for _ in range(threads)]
    stop = threading.Event()
    measuring = threading.Event()
    go = threading.Barrier(threads + 1)
    failures = []

    def worker(mine):
        try:
            go.wait()
            cleared = warmup <= 0
            while not stop.is_set():
                if not cleared and measuring.is_set():
                    mine.__init__()
                    cleared = True
                body(mine)
        except Exception as e:  # reported by the main thread
            failures.append(e)
            stop.set()

    workers = [threading.Thread(target=worker, args=(m,)) for m in out]
    for w in workers:
        w.start()
    go.wait()
    if warmup > 0:
        time.sleep(warmup)
    measuring.set()
    time.sleep(seconds)
    stop.set()
    for w in workers:
        w.join()
    if failures:
        raise failures[0]
    return out


def contention(args):
    e = engine(args.pool)
    pool = e.pool
    clock = time.perf_counter_ns

    def cycle(mine):
        start = clock()
        c = pool.connect()
        mine.waits.add(clock() - start)
        c.close()
        mine.cycles += 1

    results = run(args.threads, args.warmup, args.seconds, cycle)
    waits = Histogram()
    for t in results:
        waits.merge(t.waits)
    cycles = [t.cycles for t in results]
    total = sum(cycles)
    print(json.dumps({
        "impl": "sqlalchemy", "db": "postgresql", "threads": args.threads, "pool": args.pool,
        "seconds": args.seconds, "cycles": total,
        "ns_per_cycle": round(args.seconds * 1e9 / max(total, 1), 1),
        "wait_p50_ns": round(waits.quantile(0.5)), "wait_p99_ns": round(waits.quantile(0.99)),
        "wait_max_ns": waits.max,
        "fairness": round(min(cycles) / max(cycles), 3) if max(cycles) else 0.0,
    }))
    e.dispose()


SETTING_QUERY = text("SELECT setting_value FROM account_settings"
                     " WHERE account_id = :a AND setting_key = :k")


def widget(args):
    e = engine(args.pool)
    with e.connect() as conn:
        accounts = [row[0] for row in conn.execute(text(
            "SELECT account_id FROM transactions WHERE status = 'OPEN' ORDER BY id"))]
    if not accounts:
        raise SystemExit("no open transactions: seed first")
    clock = time.perf_counter_ns

    def read(mine, account, key):
        start = clock()
        with e.connect() as conn:
            mine.waits.add(clock() - start)
            value = conn.execute(SETTING_QUERY, {"a": account, "k": key}).scalar()
        if value is None:
            raise RuntimeError(f"account {account} has no setting {key}")
        return value

    def render(mine):
        start = clock()
        for account in accounts:
            api_key = read(mine, account, "api_key")
            api_secret = read(mine, account, "api_secret")
            paper = read(mine, account, "paper_account") == "true"
            if not api_key or not api_secret or paper is None:
                raise RuntimeError("empty setting")
        mine.renders.add(clock() - start)
        mine.cycles += 1

    results = run(args.threads, args.warmup, args.seconds, render)
    waits, renders = Histogram(), Histogram()
    for t in results:
        waits.merge(t.waits)
        renders.merge(t.renders)
    total = sum(t.cycles for t in results)
    print(json.dumps({
        "impl": "sqlalchemy", "mode": "connection-per-read", "threads": args.threads,
        "pool_size": args.pool, "duration_s": args.seconds, "renders": total,
        "renders_per_s": total / args.seconds, "settings_reads_per_render": 3 * len(accounts),
        "render_latency_p50_s": renders.quantile(0.5) * 1e-9,
        "render_latency_p99_s": renders.quantile(0.99) * 1e-9,
        "acquire_p50_s": waits.quantile(0.5) * 1e-9,
        "acquire_p99_s": waits.quantile(0.99) * 1e-9,
    }))
    e.dispose()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("case", choices=["contention", "widget"])
    p.add_argument("--threads", type=int, default=16)
    p.add_argument("--pool", type=int, default=8)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--warmup", type=float, default=1.0,
                   help="seconds of the same loop first, not measured")
    args = p.parse_args()
    {"contention": contention, "widget": widget}[args.case](args)


if __name__ == "__main__":
    main()
