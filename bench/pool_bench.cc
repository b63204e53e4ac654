// Checkout cost: poolscope's acquire+release side by side with SOCI's own
// connection_pool, at 1 and 2 threads, and at 16 and 32 threads on a pool of 8
// (contention). Connections are SQLite files opened once up front.

#include <benchmark/benchmark.h>
#include <soci/soci.h>
#include <soci/sqlite3/soci-sqlite3.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include "poolscope/pool/pool.h"
#include "poolscope/tracing/tracer.h"

namespace {

constexpr std::size_t kSmallPool = 4;      // >= threads: no waiting
constexpr std::size_t kContendedPool = 8;  // 16 or 32 threads share 8 connections

std::string database_file() {
  static const std::string path = (std::filesystem::temp_directory_path() /
                                   ("poolscope-bench-" + std::to_string(getpid()) + ".db"))
                                      .string();
  return path;
}

std::size_t pool_size_for(const benchmark::State& state) {
  return state.threads() > static_cast<int>(kSmallPool) ? kContendedPool : kSmallPool;
}

// Pools are built once per size and shared by the benchmark's threads.
soci::connection_pool& soci_pool(std::size_t size) {
  static std::unique_ptr<soci::connection_pool> pools[2];
  auto& pool = pools[size == kSmallPool ? 0 : 1];
  static std::once_flag once[2];
  std::call_once(once[size == kSmallPool ? 0 : 1], [&] {
    pool = std::make_unique<soci::connection_pool>(size);
    for (std::size_t i = 0; i < size; ++i) pool->at(i).open(soci::sqlite3, "db=" + database_file());
  });
  return *pool;
}

poolscope::Pool& poolscope_pool(std::size_t size) {
  static std::unique_ptr<poolscope::Pool> pools[2];
  auto& pool = pools[size == kSmallPool ? 0 : 1];
  static std::once_flag once[2];
  std::call_once(once[size == kSmallPool ? 0 : 1], [&] {
    poolscope::PoolConfig config;
    config.url = "sqlite://" + database_file();
    config.name = "bench-" + std::to_string(size);
    config.pool_size = size;
    config.max_overflow = 0;
    config.min_idle = size;  // open them all up front
    pool = std::make_unique<poolscope::Pool>(config);
  });
  return *pool;
}

// Tracers as shipped by default (sites, per-site statistics, leak and churn
// detection on), and the same with stack capture, attached to their own pools.
poolscope::tracing::TracerConfig tracer_config(bool stacks) {
  poolscope::tracing::TracerConfig config;
  config.logger =
      std::make_shared<spdlog::logger>("bench", std::make_shared<spdlog::sinks::null_sink_mt>());
  config.capture_stacks = stacks;
  return config;
}

poolscope::Pool& traced_pool(std::size_t size, bool stacks) {
  struct Traced {
    std::unique_ptr<poolscope::Pool> pool;
    std::unique_ptr<poolscope::tracing::Tracer> tracer;
  };
  static Traced traced[2][2];
  static std::once_flag once[2][2];
  const int s = size == kSmallPool ? 0 : 1;
  std::call_once(once[s][stacks], [&] {
    poolscope::PoolConfig config;
    config.url = "sqlite://" + database_file();
    config.name = std::string("traced-") + (stacks ? "stacks-" : "") + std::to_string(size);
    config.pool_size = size;
    config.max_overflow = 0;
    config.min_idle = size;
    traced[s][stacks].pool = std::make_unique<poolscope::Pool>(config);
    traced[s][stacks].tracer = std::make_unique<poolscope::tracing::Tracer>(*traced[s][stacks].pool,
                                                                            tracer_config(stacks));
  });
  return *traced[s][stacks].pool;
}

// soci::session sql(pool): SOCI's RAII lease.
void BM_SociConnectionPoolSession(benchmark::State& state) {
  soci::connection_pool& pool = soci_pool(pool_size_for(state));
  for (auto _ : state) {
    soci::session sql(pool);
    benchmark::DoNotOptimize(&sql);
  }
}

// pool.lease() / pool.give_back(): SOCI's bare checkout.
void BM_SociConnectionPoolLease(benchmark::State& state) {
  soci::connection_pool& pool = soci_pool(pool_size_for(state));
  for (auto _ : state) {
    const std::size_t pos = pool.lease();
    benchmark::DoNotOptimize(pos);
    pool.give_back(pos);
  }
}

// poolscope acquire() + release, no observers (tracing off).
void BM_PoolAcquireRelease(benchmark::State& state) {
  poolscope::Pool& pool = poolscope_pool(pool_size_for(state));
  for (auto _ : state) {
    poolscope::Lease lease = pool.acquire();
    benchmark::DoNotOptimize(&*lease);
  }
}

// The same with tracing on, as shipped by default.
void BM_PoolAcquireReleaseTraced(benchmark::State& state) {
  poolscope::Pool& pool = traced_pool(pool_size_for(state), /*stacks=*/false);
  for (auto _ : state) {
    poolscope::Lease lease = pool.acquire();
    benchmark::DoNotOptimize(&*lease);
  }
}

// Tracing with a stack captured on every checkout.
void BM_PoolAcquireReleaseTracedStacks(benchmark::State& state) {
  poolscope::Pool& pool = traced_pool(pool_size_for(state), /*stacks=*/true);
  for (auto _ : state) {
    poolscope::Lease lease = pool.acquire();
    benchmark::DoNotOptimize(&*lease);
  }
}

// A nested acquire() on a thread that already holds a lease.
void BM_PoolNestedReuse(benchmark::State& state) {
  poolscope::Pool& pool = poolscope_pool(pool_size_for(state));
  poolscope::Lease outer = pool.acquire();
  for (auto _ : state) {
    poolscope::Lease nested = pool.acquire();
    benchmark::DoNotOptimize(&*nested);
  }
}

BENCHMARK(BM_SociConnectionPoolSession)
    ->Threads(1)
    ->Threads(2)
    ->Threads(16)
    ->Threads(32)
    ->UseRealTime();
BENCHMARK(BM_SociConnectionPoolLease)
    ->Threads(1)
    ->Threads(2)
    ->Threads(16)
    ->Threads(32)
    ->UseRealTime();
BENCHMARK(BM_PoolAcquireRelease)->Threads(1)->Threads(2)->Threads(16)->Threads(32)->UseRealTime();
BENCHMARK(BM_PoolAcquireReleaseTraced)
    ->Threads(1)
    ->Threads(2)
    ->Threads(16)
    ->Threads(32)
    ->UseRealTime();
BENCHMARK(BM_PoolAcquireReleaseTracedStacks)->Threads(1)->Threads(2)->UseRealTime();
// Every thread holds an outer lease, so this needs a connection per thread: no 16.
BENCHMARK(BM_PoolNestedReuse)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace
