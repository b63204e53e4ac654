// poolscope-contention: N threads looping acquire + release on a pool of M
// warm connections (SQLite, or PostgreSQL with --db) for a fixed time, the plain harness behind the
// convoy figures: cycles per second, the acquire latency distribution
// (p50 / p99 / max) and fairness (fewest / most cycles of any thread), for
// poolscope untraced, poolscope traced, and soci::session(connection_pool).
// One run prints one JSON object; scripts/bench.sh interleaves runs.
//
//   poolscope-contention --impl poolscope|traced|soci --threads 16 --pool 8 --seconds 2
//                        [--db postgresql://user:pw@127.0.0.1:5432/db]
//
// Without --db the connections are a temporary SQLite file's. With a
// PostgreSQL URL every implementation holds its connections on the same
// server as bench/hikari/ and bench/sqlalchemy/ do, though a checkout sends
// nothing to it: what is measured is the pool, not the database.

#include <soci/soci.h>
#if defined(POOLSCOPE_BENCH_POSTGRESQL)
#include <soci/postgresql/soci-postgresql.h>
#endif
#include <soci/sqlite3/soci-sqlite3.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "poolscope/pool/pool.h"
#include "poolscope/pool/url.h"
#include "poolscope/tracing/tracer.h"

namespace {

using Clock = std::chrono::steady_clock;

// Latencies in buckets 2^(k/4) ns: 25% resolution from 1 ns to ~1 hour.
struct Histogram {
  static constexpr int kBuckets = 4 * 42;
  std::array<std::uint64_t, kBuckets> counts{};
  std::uint64_t max_ns = 0;

  void add(std::uint64_t ns) {
    max_ns = std::max(max_ns, ns);
    const int b = ns == 0
                      ? 0
                      : std::min(kBuckets - 1,
                                 static_cast<int>(4.0 * std::log2(static_cast<double>(ns))) + 1);
    ++counts[static_cast<std::size_t>(b)];
  }
  void merge(const Histogram& o) {
    for (int i = 0; i < kBuckets; ++i)
      counts[static_cast<std::size_t>(i)] += o.counts[static_cast<std::size_t>(i)];
    max_ns = std::max(max_ns, o.max_ns);
  }
  double quantile(double q) const {
    std::uint64_t total = 0;
    for (std::uint64_t c : counts) total += c;
    const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total));
    std::uint64_t seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += counts[static_cast<std::size_t>(i)];
      if (seen > rank) return i == 0 ? 0.0 : std::exp2(static_cast<double>(i) / 4.0);
    }
    return static_cast<double>(max_ns);
  }
};

struct alignas(64) PerThread {
  std::uint64_t cycles = 0;
  Histogram waits;
};

template <class Cycle>
void run(int threads, double seconds, Cycle cycle, std::vector<PerThread>& out) {
  out.assign(static_cast<std::size_t>(threads), PerThread{});
  std::atomic<int> ready{0};
  std::atomic<bool> go{false}, stop{false};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      PerThread& mine = out[static_cast<std::size_t>(t)];
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      while (!stop.load(std::memory_order_relaxed)) {
        const auto start = Clock::now();
        cycle([&] {
          mine.waits.add(static_cast<std::uint64_t>(
              std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count()));
        });
        ++mine.cycles;
      }
    });
  }
  while (ready.load() < threads) std::this_thread::yield();
  go.store(true, std::memory_order_release);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (std::thread& t : pool) t.join();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"poolscope-contention: threads looping acquire + release on a warm pool"};
  std::string impl = "poolscope";
  int threads = 16;
  std::size_t pool_size = 8;
  double seconds = 2;
  app.add_option("--impl", impl, "poolscope, traced or soci")
      ->check(CLI::IsMember({"poolscope", "traced", "soci"}));
  app.add_option("--threads", threads, "Threads")->check(CLI::Range(1, 1024));
  app.add_option("--pool", pool_size, "Connections")->check(CLI::Range(1, 1024));
  app.add_option("--seconds", seconds, "How long")->check(CLI::Range(0.1, 3600.0));
  std::string url;
  app.add_option("--db", url,
                 "Database URL (postgresql://...); default: a temporary SQLite file. A "
                 "password here is visible in ps: prefer $POOLSCOPE_BENCH_DB")
      ->envname("POOLSCOPE_BENCH_DB");
  CLI11_PARSE(app, argc, argv);

  const std::string sqlite_file = (std::filesystem::temp_directory_path() /
                                   ("poolscope-contention-" + std::to_string(getpid()) + ".db"))
                                      .string();
  if (url.empty()) url = "sqlite://" + sqlite_file;
  const poolscope::ConnectionUrl parsed = poolscope::ConnectionUrl::parse(url);
  const bool postgres = parsed.backend() == poolscope::Backend::kPostgreSQL;
  std::vector<PerThread> results;
  if (impl == "soci") {
    soci::connection_pool pool(pool_size);
    for (std::size_t i = 0; i < pool_size; ++i) {
      if (!postgres) {
        pool.at(i).open(soci::sqlite3, parsed.connect_string());
        continue;
      }
#if defined(POOLSCOPE_BENCH_POSTGRESQL)
      pool.at(i).open(soci::postgresql, parsed.connect_string());
#else
      std::fprintf(stderr, "poolscope-contention: built without PostgreSQL\n");
      return 2;
#endif
    }
    run(
        threads, seconds,
        [&](auto&& acquired) {
          soci::session sql(pool);
          acquired();
        },
        results);
  } else {
    poolscope::PoolConfig config;
    config.url = url;
    config.name = "contention";
    config.pool_size = pool_size;
    config.max_overflow = 0;
    config.min_idle = pool_size;
    poolscope::Pool pool(config);
    std::unique_ptr<poolscope::tracing::Tracer> tracer;
    if (impl == "traced") {
      poolscope::tracing::TracerConfig tc;
      tc.logger = std::make_shared<spdlog::logger>("contention",
                                                   std::make_shared<spdlog::sinks::null_sink_mt>());
      tracer = std::make_unique<poolscope::tracing::Tracer>(pool, tc);
    }
    run(
        threads, seconds,
        [&](auto&& acquired) {
          poolscope::Lease lease = pool.acquire();
          acquired();
        },
        results);
  }
  std::filesystem::remove(sqlite_file);

  Histogram all;
  std::uint64_t total = 0, fewest = UINT64_MAX, most = 0;
  for (const PerThread& t : results) {
    all.merge(t.waits);
    total += t.cycles;
    fewest = std::min(fewest, t.cycles);
    most = std::max(most, t.cycles);
  }
  const double ns_per_cycle =
      seconds * 1e9 / static_cast<double>(std::max<std::uint64_t>(total, 1));
  std::printf(
      "{\"impl\": \"%s\", \"db\": \"%s\", \"threads\": %d, \"pool\": %zu, \"seconds\": %.2f, "
      "\"cycles\": %llu, "
      "\"ns_per_cycle\": %.1f, \"wait_p50_ns\": %.0f, \"wait_p99_ns\": %.0f, \"wait_max_ns\": "
      "%llu, "
      "\"fairness\": %.3f}\n",
      impl.c_str(), postgres ? "postgresql" : "sqlite", threads, pool_size, seconds,
      static_cast<unsigned long long>(total), ns_per_cycle, all.quantile(0.5), all.quantile(0.99),
      static_cast<unsigned long long>(all.max_ns),
      most == 0 ? 0.0 : static_cast<double>(fewest) / static_cast<double>(most));
  return 0;
}
