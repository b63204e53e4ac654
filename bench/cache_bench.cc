// Cache hits: poolscope's TtlCache and SettingsCache beside the baseline a
// user would write (one std::mutex around a std::unordered_map). Same keys
// (1,024 strings longer than the small-string buffer), same values (a
// shared_ptr to a config blob), every thread walking them with the same
// stride from its own starting point.

#include <benchmark/benchmark.h>
#include <soci/soci.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "poolscope/cache/settings_cache.h"
#include "poolscope/cache/ttl_cache.h"

namespace {

using Value = std::shared_ptr<const std::string>;
constexpr std::size_t kKeys = 1024;

const std::vector<std::string>& keys() {
  static const std::vector<std::string> k = [] {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < kKeys; ++i)
      out.push_back("strategy_config:ETH/USDT:" + std::to_string(i));
    return out;
  }();
  return k;
}

// Every thread steps by the same prime from its own offset, so threads
// rarely read the same key at the same moment.
std::size_t next_key(std::size_t i, int thread) {
  return (i * 7 + static_cast<std::size_t>(thread) * 331) % kKeys;
}

poolscope::cache::TtlCache<std::string, Value>& ttl_cache() {
  static poolscope::cache::TtlCache<std::string, Value> cache(
      {.name = "bench", .ttl = std::chrono::hours(1)});
  static std::once_flag filled;
  std::call_once(filled, [] {
    for (const std::string& k : keys()) cache.put(k, std::make_shared<const std::string>(200, 'v'));
  });
  return cache;
}

struct LockedMap {
  std::mutex mu;
  std::unordered_map<std::string, Value> map;
};

LockedMap& locked_map() {
  static LockedMap m;
  static std::once_flag filled;
  std::call_once(filled, [] {
    for (const std::string& k : keys())
      m.map.emplace(k, std::make_shared<const std::string>(200, 'v'));
  });
  return m;
}

void BM_TtlCacheHit(benchmark::State& state) {
  auto& cache = ttl_cache();
  std::size_t i = 0;
  for (auto _ : state) {
    std::optional<Value> v =
        cache.get(std::string_view(keys()[next_key(i++, state.thread_index())]));
    benchmark::DoNotOptimize(v);
  }
}

void BM_MutexUnorderedMapHit(benchmark::State& state) {
  LockedMap& m = locked_map();
  std::size_t i = 0;
  for (auto _ : state) {
    Value v;
    {
      std::lock_guard lock(m.mu);
      auto it = m.map.find(keys()[next_key(i++, state.thread_index())]);
      if (it != m.map.end()) v = it->second;
    }
    benchmark::DoNotOptimize(v);
  }
}

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

BENCHMARK(BM_TtlCacheHit)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_SettingsCacheHit)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_MutexUnorderedMapHit)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace
