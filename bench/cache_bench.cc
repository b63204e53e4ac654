// Cache hits: poolscope's TtlCache and SettingsCache beside what a user
// would pick instead: one std::mutex around a std::unordered_map, and TBB's
// concurrent_hash_map. Every contender gets what a service's read loop
// gives it: 1,000 keys of 30 bytes (past the small-string buffer, so a key
// lives on the heap) held in a std::vector<std::string> as the caller's
// own data, values that are std::shared_ptr<const std::string> copied out
// (a reference count up and down per hit), the default clock (a TtlCache
// hit reads it), and each thread walking the keys in order from its own
// starting point.
//
// Two shapes of the same measurement:
//   BM_<X>Hit        Google Benchmark's loop, one hit per iteration;
//   BM_<X>HitLoop    a plain loop, as an application writes it: each thread
//                    walks the keys kPasses times, timed as a whole; the
//                    reported time is one hit's share of a thread's time.
// Run them interleaved and judge by the worst repetition:
//   poolscope-bench --benchmark_filter=Hit --benchmark_repetitions=3
//                   --benchmark_enable_random_interleaving=true
// Instructions per hit: each contender's hit is one noinline function
// (hit_ttl, hit_mutex_map, hit_tbb), so callgrind counts it alone:
//   valgrind --tool=callgrind --toggle-collect='*hit_ttl*' poolscope-bench
//            --benchmark_filter='BM_TtlCacheHitLoop/threads:1$'

#include <benchmark/benchmark.h>
#include <soci/soci.h>
#include <unistd.h>

#include <algorithm>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <vector>

#if defined(POOLSCOPE_BENCH_TBB)
#include <oneapi/tbb/concurrent_hash_map.h>
#endif

#include "poolscope/cache/settings_cache.h"
#include "poolscope/cache/ttl_cache.h"

namespace {

using Value = std::shared_ptr<const std::string>;
constexpr std::size_t kKeys = 1000;
constexpr int kPasses = 1000;  // per thread and plain-loop run: 1,000,000 hits

// "account_settings:ETH/USDT:0042": 30 bytes, allocated one by one as a
// caller's strings are.
const std::vector<std::string>& keys() {
  static const std::vector<std::string> k = [] {
    std::vector<std::string> out;
    out.reserve(kKeys);
    for (std::size_t i = 0; i < kKeys; ++i) {
      char digits[8];
      std::snprintf(digits, sizeof digits, "%04zu", i);
      out.push_back(std::string("account_settings:ETH/USDT:") + digits);
    }
    return out;
  }();
  return k;
}

Value make_value() { return std::make_shared<const std::string>(200, 'v'); }

// Where thread t starts its walk: threads spread over the keys, so they
// rarely copy the same value (the same reference count) at once.
std::size_t first_key(int thread) {
  return (static_cast<std::size_t>(thread) * (kKeys / 2 + 1)) % kKeys;
}

// The contenders, each filled with every key on first use. (Filled inside
// the static's initializer, so that a hit pays one guard check, the same
// for every contender, and no call_once.)
using TtlCache = poolscope::cache::TtlCache<std::string, Value>;

TtlCache& ttl_cache() {
  static TtlCache& cache = *[] {
    // The default TTL (5 minutes) and the default clock, as a user's cache has.
    auto* c = new TtlCache({.name = "bench"});
    for (const std::string& k : keys()) c->put(k, make_value());
    return c;
  }();
  return cache;
}

struct LockedMap {
  std::mutex mu;
  std::unordered_map<std::string, Value> map;
};

LockedMap& locked_map() {
  static LockedMap& m = *[] {
    auto* map = new LockedMap;
    for (const std::string& k : keys()) map->map.emplace(k, make_value());
    return map;
  }();
  return m;
}

// One hit each, as the caller writes it: look up, copy the value out, use
// it, let it go. Not inlined, so callgrind can count one hit alone.
[[gnu::noinline]] std::size_t hit_ttl(const std::string& key) {
  const std::optional<Value> v = ttl_cache().get(key);
  return v ? (*v)->size() : 0;
}

[[gnu::noinline]] std::size_t hit_mutex_map(const std::string& key) {
  LockedMap& m = locked_map();
  Value v;
  {
    std::lock_guard lock(m.mu);
    const auto it = m.map.find(key);
    if (it != m.map.end()) v = it->second;
  }
  return v ? v->size() : 0;
}

#if defined(POOLSCOPE_BENCH_TBB)
using TbbMap = oneapi::tbb::concurrent_hash_map<std::string, Value>;

TbbMap& tbb_map() {
  static TbbMap& m = *[] {
    auto* map = new TbbMap;
    for (const std::string& k : keys()) map->insert({k, make_value()});
    return map;
  }();
  return m;
}

[[gnu::noinline]] std::size_t hit_tbb(const std::string& key) {
  Value v;
  {
    TbbMap::const_accessor a;
    if (tbb_map().find(a, key)) v = a->second;
  }
  return v ? v->size() : 0;
}
#endif

using HitFn = std::size_t (*)(const std::string&);

// Google Benchmark's loop: one hit per iteration.
void run_hits(benchmark::State& state, HitFn hit) {
  const std::vector<std::string>& k = keys();
  std::size_t i = first_key(state.thread_index());
  for (auto _ : state) {
    benchmark::DoNotOptimize(hit(k[i]));
    if (++i == kKeys) i = 0;
  }
}

// CPU time of the calling thread: beside wall time on a machine that other
// programs share, where a thread waiting for a core is not doing hits.
double thread_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// The plain loop: each thread walks the keys kPasses times from its own
// starting point; the manual time is one hit's share of the mean thread's
// wall time, so 1 and 2 threads compare per thread. The counter cpu_ns is
// the same share of the threads' CPU time (a thread blocked on a lock uses
// none, so it flatters a contended lock: judge by the time).
void run_plain_loop(benchmark::State& state, HitFn hit) {
  const int threads = static_cast<int>(state.range(0));
  const std::vector<std::string>& k = keys();
  hit(k[0]);  // fill the contender before the clock starts
  for (auto _ : state) {
    std::barrier start(threads);
    std::vector<double> seconds(static_cast<std::size_t>(threads));
    std::vector<double> cpu(static_cast<std::size_t>(threads));
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        std::size_t sink = 0;
        start.arrive_and_wait();
        const auto begin = std::chrono::steady_clock::now();
        const double cpu_begin = thread_cpu_seconds();
        const std::size_t first = first_key(t);
        for (int pass = 0; pass < kPasses; ++pass) {
          for (std::size_t i = first; i < kKeys; ++i) sink += hit(k[i]);
          for (std::size_t i = 0; i < first; ++i) sink += hit(k[i]);
        }
        seconds[static_cast<std::size_t>(t)] =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
        cpu[static_cast<std::size_t>(t)] = thread_cpu_seconds() - cpu_begin;
        benchmark::DoNotOptimize(sink);
      });
    }
    for (std::thread& w : workers) w.join();
    const double hits = static_cast<double>(threads) * kPasses * kKeys;
    double total = 0, total_cpu = 0;
    for (int t = 0; t < threads; ++t) {
      total += seconds[static_cast<std::size_t>(t)];
      total_cpu += cpu[static_cast<std::size_t>(t)];
    }
    state.SetIterationTime(total / hits);
    state.counters["cpu_ns"] = total_cpu / hits * 1e9;
  }
}

// The worst of the repetitions, beside Google Benchmark's mean and median.
double worst(const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); }

void BM_TtlCacheHit(benchmark::State& state) { run_hits(state, hit_ttl); }
void BM_MutexUnorderedMapHit(benchmark::State& state) { run_hits(state, hit_mutex_map); }
void BM_TtlCacheHitLoop(benchmark::State& state) { run_plain_loop(state, hit_ttl); }
void BM_MutexUnorderedMapHitLoop(benchmark::State& state) { run_plain_loop(state, hit_mutex_map); }
#if defined(POOLSCOPE_BENCH_TBB)
void BM_TbbConcurrentHashMapHit(benchmark::State& state) { run_hits(state, hit_tbb); }
void BM_TbbConcurrentHashMapHitLoop(benchmark::State& state) { run_plain_loop(state, hit_tbb); }
#endif

// A SQLite file removed (with its journals) when the program exits.
struct TempDatabase {
  std::string path;
  ~TempDatabase() {
    std::error_code ignored;
    for (const char* suffix : {"", "-journal", "-wal", "-shm"})
      std::filesystem::remove(path + suffix, ignored);
  }
};

// SettingsCache::get<int> on 64 accounts whose settings are cached.
poolscope::cache::SettingsCache& settings_cache() {
  // Constructed before the pool, so destroyed after it has closed the file.
  static const TempDatabase db{(std::filesystem::temp_directory_path() /
                                ("poolscope-settings-bench-" + std::to_string(::getpid()) + ".db"))
                                   .string()};
  static poolscope::Pool pool(
      {.url = "sqlite://" + db.path, .name = "settings-bench", .pool_size = 2});
  static poolscope::cache::SettingsCache cache(
      pool, {.name = "settings",
             .table = {"s", "account_id", "setting_key", "setting_value"},
             .ttl = std::chrono::hours(1)});
  static std::once_flag filled;
  std::call_once(filled, [] {
    {
      poolscope::Lease sql = pool.acquire();
      *sql << "CREATE TABLE s (account_id INTEGER, setting_key VARCHAR(64), setting_value "
              "VARCHAR(64),"
              " PRIMARY KEY (account_id, setting_key))";
      soci::transaction tx(*sql);
      for (int a = 0; a < 64; ++a) {
        for (const std::string key : {"api_key", "api_secret", "paper_account", "max_orders"}) {
          const std::string value = key == "max_orders" ? "25" : key + "-value";
          *sql << "INSERT INTO s VALUES (:a, :k, :v)", soci::use(a), soci::use(key),
              soci::use(value);
        }
      }
      tx.commit();
    }
    for (int a = 0; a < 64; ++a) cache.settings(a);
  });
  return cache;
}

void BM_SettingsCacheHit(benchmark::State& state) {
  auto& cache = settings_cache();
  std::int64_t account = state.thread_index() * 31;
  for (auto _ : state) {
    int orders = cache.get<int>(account++ % 64, "max_orders");
    benchmark::DoNotOptimize(orders);
  }
}

#define POOLSCOPE_HIT_BENCHMARK(name) \
  BENCHMARK(name)->Threads(1)->Threads(2)->UseRealTime()->ComputeStatistics("worst", worst)
#define POOLSCOPE_HIT_LOOP_BENCHMARK(name) \
  BENCHMARK(name)                          \
      ->ArgName("threads")                 \
      ->Arg(1)                             \
      ->Arg(2)                             \
      ->Iterations(1)                      \
      ->UseManualTime()                    \
      ->Unit(benchmark::kNanosecond)       \
      ->ComputeStatistics("worst", worst)

POOLSCOPE_HIT_BENCHMARK(BM_TtlCacheHit);
POOLSCOPE_HIT_BENCHMARK(BM_MutexUnorderedMapHit);
POOLSCOPE_HIT_LOOP_BENCHMARK(BM_TtlCacheHitLoop);
POOLSCOPE_HIT_LOOP_BENCHMARK(BM_MutexUnorderedMapHitLoop);
#if defined(POOLSCOPE_BENCH_TBB)
POOLSCOPE_HIT_BENCHMARK(BM_TbbConcurrentHashMapHit);
POOLSCOPE_HIT_LOOP_BENCHMARK(BM_TbbConcurrentHashMapHitLoop);
#endif
POOLSCOPE_HIT_BENCHMARK(BM_SettingsCacheHit);

}  // namespace
