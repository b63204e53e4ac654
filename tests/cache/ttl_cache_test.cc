#include "poolscope/cache/ttl_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <iostream>
#include <new>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cache_test_util.h"
#include "test_util.h"

// Counts allocations on the thread that asks, to check that hits allocate
// nothing. The replacement pairs malloc with free, which GCC cannot see.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
namespace {
thread_local bool t_counting = false;
thread_local std::size_t t_allocations = 0;
}  // namespace

void* operator new(std::size_t size) {
  if (t_counting) ++t_allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace poolscope::cache {
namespace {

using namespace std::chrono_literals;

using testing::manual;
using testing::TtlCacheTest;

TEST_F(TtlCacheTest, GetReturnsWhatWasPutAndMissesWhatWasNot) {
  TtlCache<std::string, int> cache(manual(clock_));
  cache.put("a", 1);
  EXPECT_EQ(cache.get(std::string("a")), 1);
  EXPECT_EQ(cache.get(std::string_view("a")), 1);
  EXPECT_EQ(cache.get(std::string("b")), std::nullopt);
  const CacheStats s = cache.stats();
  EXPECT_EQ(s.hits, 2u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.entries, 1u);
  EXPECT_GT(s.approximate_bytes, 0u);
  EXPECT_DOUBLE_EQ(s.hit_ratio(), 2.0 / 3.0);
}

TEST_F(TtlCacheTest, EntriesExpireAfterTheCachesTtl) {
  TtlCache<std::string, int> cache(manual(clock_));
  cache.put("a", 1);
  clock_->advance(299s);
  EXPECT_EQ(cache.get(std::string("a")), 1);
  clock_->advance(2s);
  EXPECT_EQ(cache.get(std::string("a")), std::nullopt);
  EXPECT_EQ(cache.stats().evictions_ttl, 1u);
  EXPECT_EQ(cache.stats().entries, 0u);
}

TEST_F(TtlCacheTest, PerEntryTtlOverridesTheCachesAndZeroNeverExpires) {
  TtlCache<std::string, int> cache(manual(clock_));
  cache.put("short", 1, 10s);
  cache.put("forever", 2, 0ms);
  cache.put("default", 3);
  clock_->advance(11s);
  EXPECT_EQ(cache.get(std::string("short")), std::nullopt);
  EXPECT_EQ(cache.get(std::string("default")), 3);
  clock_->advance(24h);
  EXPECT_EQ(cache.get(std::string("default")), std::nullopt);
  EXPECT_EQ(cache.get(std::string("forever")), 2);
  EXPECT_EQ(cache.get_or_load(
                "loaded", [](const std::string&) { return 4; }, 5s),
            4);
  clock_->advance(6s);
  EXPECT_EQ(cache.get(std::string("loaded")), std::nullopt);
}

TEST_F(TtlCacheTest, PurgeExpiredRemovesExpiredEntriesWithoutTouchingThem) {
  TtlCache<std::string, int> cache(manual(clock_));
  cache.put("a", 1, 1s);
  cache.put("b", 2, 1s);
  cache.put("c", 3);
  clock_->advance(2s);
  EXPECT_EQ(cache.purge_expired(), 2u);
  EXPECT_EQ(cache.stats().entries, 1u);
  EXPECT_EQ(cache.stats().evictions_ttl, 2u);
}

TEST_F(TtlCacheTest, TheLeastRecentlyUsedEntryIsEvictedFirst) {
  TtlCache<std::string, int> cache(manual(clock_, /*max_entries=*/3, /*shards=*/1));
  cache.put("a", 1);
  cache.put("b", 2);
  cache.put("c", 3);
  EXPECT_EQ(cache.get(std::string("a")), 1);  // a is now the most recent; b the least
  cache.put("d", 4);
  EXPECT_EQ(cache.get(std::string("b")), std::nullopt);
  EXPECT_EQ(cache.get(std::string("a")), 1);
  cache.put("e", 5);  // c is now the least recently used
  EXPECT_EQ(cache.get(std::string("c")), std::nullopt);
  EXPECT_EQ(cache.get(std::string("d")), 4);
  EXPECT_EQ(cache.stats().evictions_capacity, 2u);
  EXPECT_EQ(cache.stats().entries, 3u);
}

TEST_F(TtlCacheTest, WhenEveryEntryWasReadTheOldestGoesAndTheNewOneStays) {
  TtlCache<std::string, int> cache(manual(clock_, /*max_entries=*/3, /*shards=*/1));
  cache.put("a", 1);
  cache.put("b", 2);
  cache.put("c", 3);
  for (const char* key : {"a", "b", "c"}) ASSERT_TRUE(cache.get(std::string(key)));
  cache.put("d", 4);
  EXPECT_EQ(cache.get(std::string("d")), 4) << "a new entry must not be the one evicted";
  EXPECT_EQ(cache.get(std::string("a")), std::nullopt);
  EXPECT_EQ(cache.get(std::string("b")), 2);
  EXPECT_EQ(cache.get(std::string("c")), 3);
  EXPECT_EQ(cache.stats().evictions_capacity, 1u);
}

TEST_F(TtlCacheTest, ShardsNeverHoldMoreThanMaxEntriesInAll) {
  TtlCache<int, int> cache(manual(clock_, /*max_entries=*/10, /*shards=*/16));
  for (int i = 0; i < 1000; ++i) cache.put(i, i);
  EXPECT_LE(cache.stats().entries, 10u);
  EXPECT_EQ(cache.stats().evictions_capacity, 1000u - cache.stats().entries);
}

TEST_F(TtlCacheTest, EraseAndClearCountAsInvalidations) {
  TtlCache<std::string, int> cache(manual(clock_));
  cache.put("a", 1);
  cache.put("b", 2);
  cache.put("c", 3);
  EXPECT_TRUE(cache.erase("a"));
  EXPECT_FALSE(cache.erase("a"));
  cache.clear();
  EXPECT_EQ(cache.stats().entries, 0u);
  EXPECT_EQ(cache.stats().evictions_invalidated, 3u);
  EXPECT_EQ(cache.stats().approximate_bytes, 0u);
}

TEST_F(TtlCacheTest, AnEnormousTtlNeverExpiresInsteadOfOverflowing) {
  // now + ttl would overflow (undefined behaviour, caught by UBSan) and
  // wrap into the past, so the entry would be expired at once.
  constexpr auto kForever = std::chrono::milliseconds::max();
  constexpr auto k300Years =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::years(300));
  TtlCacheConfig config = manual(clock_);
  config.ttl = kForever;
  TtlCache<std::string, int> cache(config);
  cache.put("max", 1);  // the cache's TTL
  cache.put("300y", 2, k300Years);
  cache.put("almost", 3, kForever - 1ms);
  EXPECT_EQ(cache.get_or_load(
                "loaded", [](const std::string&) { return 4; }, kForever),
            4);
  EXPECT_EQ(cache.reload(
                "reloaded", [](const std::string&) { return 5; }, k300Years),
            5);
  cache.enable_refresh([](const std::string&) { return 6; }, kForever);
  clock_->advance(std::chrono::hours(24 * 365 * 200));  // 200 years later
  for (const char* key : {"max", "300y", "almost", "loaded", "reloaded"}) {
    EXPECT_TRUE(cache.get(std::string(key)).has_value()) << key;
  }
  EXPECT_EQ(cache.purge_expired(), 0u);
  EXPECT_EQ(cache.stats().evictions_ttl, 0u);
}

TEST_F(TtlCacheTest, AHitAllocatesNothing) {
  TtlCache<std::string, std::shared_ptr<const std::string>> cache(manual(clock_));
  const std::string long_key(64, 'k');  // beyond the small-string buffer
  cache.put(long_key, std::make_shared<const std::string>(200, 'v'));
  TtlCache<int, int> ints(manual(clock_));
  ints.put(7, 49);
  t_allocations = 0;
  t_counting = true;
  auto value = cache.get(std::string_view(long_key));
  auto loaded = cache.get_or_load(
      long_key, [](const std::string&) { return std::shared_ptr<const std::string>(); });
  std::size_t size = 0;
  cache.visit(long_key, [&](const std::shared_ptr<const std::string>& v) { size = v->size(); });
  auto number = ints.get(7);
  t_counting = false;
  EXPECT_EQ(t_allocations, 0u);
  ASSERT_TRUE(value.has_value());
  EXPECT_EQ((*value)->size(), 200u);
  EXPECT_EQ(loaded, *value);
  EXPECT_EQ(size, 200u);
  EXPECT_EQ(number, 49);
}

TEST_F(TtlCacheTest, ManyThreadsKeepTheCacheConsistent) {
  TtlCache<int, int> cache(manual(clock_, /*max_entries=*/64, /*shards=*/8));
  constexpr int kThreads = 8;
  std::atomic<std::uint64_t> gets{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::minstd_rand rng(t);
      while (!stop.load(std::memory_order_relaxed)) {
        const int key = static_cast<int>(rng() % 200);
        switch (rng() % 6) {
          case 0:
            cache.put(key, key * 2);
            break;
          case 1:
            cache.erase(key);
            break;
          case 2:
            if (rng() % 50 == 0) cache.invalidate_if([&](int k) { return k % 7 == key % 7; });
            break;
          default: {
            const int v = cache.get_or_load(key, [](int k) { return k * 2; });
            gets.fetch_add(1, std::memory_order_relaxed);
            if (v != key * 2) ADD_FAILURE() << "key " << key << " gave " << v;
          }
        }
      }
    });
  }
  std::this_thread::sleep_for(1s);
  stop = true;
  for (std::thread& t : threads) t.join();
  const CacheStats s = cache.stats();
  EXPECT_LE(s.entries, 64u);
  EXPECT_EQ(s.hits + s.misses, gets.load());
  EXPECT_LE(s.loads + s.load_failures, s.misses);
}

TEST(TtlCacheConfigTest, ValidateNamesTheField) {
  auto message = [](auto breaks) {
    return poolscope::testing::validation_error<TtlCacheConfig>(breaks);
  };

  EXPECT_EQ(message([](TtlCacheConfig& c) { c.shards = 3; }),
            "TtlCacheConfig.shards must be a power of two from 1 to 1024 (got 3)");
  EXPECT_EQ(message([](TtlCacheConfig& c) { c.max_entries = 0; }),
            "TtlCacheConfig.max_entries must be at least 1 (got 0)");
  EXPECT_EQ(message([](TtlCacheConfig& c) { c.ttl = -1ms; }),
            "TtlCacheConfig.ttl must not be negative (got -1 ms)");
  EXPECT_NE(message([](TtlCacheConfig& c) { c.name = "a b"; }).find("TtlCacheConfig.name"),
            std::string::npos);
  EXPECT_THROW((TtlCache<int, int>(TtlCacheConfig{.name = "x", .shards = 0})),
               std::invalid_argument);
}

}  // namespace
}  // namespace poolscope::cache
