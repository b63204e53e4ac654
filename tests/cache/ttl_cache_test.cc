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

TtlCacheConfig manual(std::shared_ptr<ManualClock> clock, std::size_t max_entries = 100,
                      std::size_t shards = 4) {
  TtlCacheConfig c;
  c.name = "test";
  c.ttl = 300s;
  c.max_entries = max_entries;
  c.shards = shards;
  c.clock = std::move(clock);
  return c;
}

class TtlCacheTest : public ::testing::Test {
 protected:
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>();
};

// Runs f on a thread of its own. Unlike std::async's, the future does not
// join in its destructor, so a test can give up on a call that hangs.
template <class F>
auto start(F f) {
  auto task = std::make_shared<std::packaged_task<std::invoke_result_t<F&>()>>(std::move(f));
  auto future = task->get_future();
  std::thread([task] { (*task)(); }).detach();
  return future;
}

// The result of a started call. One that has not returned within a generous
// limit fails the test and ends the process: the thread cannot be stopped,
// and it uses objects the test is about to destroy.
template <class T>
T finish(std::future<T>& future) {
  if (future.wait_for(30s) != std::future_status::ready) {
    ADD_FAILURE() << "the call never returned: a key was left hanging";
    std::cout.flush();
    std::fflush(nullptr);
    std::_Exit(1);
  }
  return future.get();
}

// A value whose copies fail while fail_copies is set (moves never do).
struct Fragile {
  static inline std::atomic<bool> fail_copies{false};
  explicit Fragile(int v) : value(v) {}
  Fragile(const Fragile& other) : value(other.value) { check(); }
  Fragile(Fragile&&) noexcept = default;
  Fragile& operator=(const Fragile& other) {
    check();
    value = other.value;
    return *this;
  }
  Fragile& operator=(Fragile&&) noexcept = default;
  static void check() {
    if (fail_copies.load()) throw std::runtime_error("copy failed");
  }
  int value;
};

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

TEST_F(TtlCacheTest, PrefixInvalidationRemovesOnlyKeysWithThePrefix) {
  TtlCache<std::string, int> cache(manual(clock_));
  for (const char* key : {"user:1", "user:10", "users", "account:1", "user:"}) cache.put(key, 1);
  EXPECT_EQ(cache.invalidate_prefix("user:"), 3u);
  EXPECT_EQ(cache.get(std::string("users")), 1);
  EXPECT_EQ(cache.get(std::string("account:1")), 1);
  EXPECT_EQ(cache.get(std::string("user:10")), std::nullopt);
}

TEST_F(TtlCacheTest, GlobInvalidationTreatsOnlyStarAndQuestionMarkAsWildcards) {
  TtlCache<std::string, int> cache(manual(clock_));
  const std::vector<std::string> keys = {
      "pair:ETH/USDT",         "pair:BTC/USDT", "pair:[x]",  "pair:x",   "pair.1",  "pairX1",
      "strategy:ETH/USDT:rsi", "a+b(c)^$",      "a+b(c)^$!", "star*key", "starXkey"};
  auto reset = [&] {
    cache.clear();
    for (const std::string& k : keys) cache.put(k, 1);
  };
  auto invalidated = [&](std::string_view pattern) {
    reset();
    cache.invalidate_glob(pattern);
    std::vector<std::string> gone;
    for (const std::string& k : keys) {
      if (!cache.get(k)) gone.push_back(k);
    }
    return gone;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(invalidated("pair:*"), (V{"pair:ETH/USDT", "pair:BTC/USDT", "pair:[x]", "pair:x"}));
  EXPECT_EQ(invalidated("pair:[x]"), (V{"pair:[x]"})) << "'[' and ']' are literal";
  EXPECT_EQ(invalidated("pair.?"), (V{"pair.1"})) << "'.' is literal, '?' one character";
  EXPECT_EQ(invalidated("*:ETH/*"), (V{"pair:ETH/USDT", "strategy:ETH/USDT:rsi"}));
  EXPECT_EQ(invalidated("a+b(c)^$"), (V{"a+b(c)^$"})) << "regex characters are literal";
  EXPECT_EQ(invalidated("star\\*key"), (V{"star*key"})) << "'\\*' is a literal star";
  EXPECT_EQ(invalidated("star?key"), (V{"star*key", "starXkey"}));
  EXPECT_EQ(invalidated("*"), keys);
  EXPECT_EQ(invalidated("nothing*"), V{});
}

TEST(GlobTest, MatchesLikeTheIncidentsInvalidatePattern) {
  EXPECT_TRUE(glob_match("", ""));
  EXPECT_FALSE(glob_match("", "a"));
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_TRUE(glob_match("a*b*c", "axxbyyc"));
  EXPECT_FALSE(glob_match("a*b*c", "axxbyy"));
  EXPECT_TRUE(glob_match("*aab", "aaaab"));
  EXPECT_TRUE(glob_match("??", "ab"));
  EXPECT_FALSE(glob_match("??", "abc"));
  EXPECT_TRUE(glob_match("a\\?", "a?"));
  EXPECT_FALSE(glob_match("a\\?", "ab"));
  EXPECT_TRUE(glob_match("end\\", "end\\"));
  EXPECT_EQ(glob_literal_prefix("user:*:x"), "user:");
  EXPECT_EQ(glob_literal_prefix("plain"), "plain");
}

TEST_F(TtlCacheTest, ConcurrentMissesOnOneKeyRunTheLoaderOnce) {
  TtlCache<std::string, std::string> cache(manual(clock_));
  constexpr int kThreads = 16;
  std::atomic<int> calls{0};
  std::barrier start(kThreads);
  std::vector<std::string> results(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      results[i] = cache.get_or_load("hot", [&](const std::string&) {
        calls.fetch_add(1);
        std::this_thread::sleep_for(200ms);  // long enough for every thread to arrive
        return std::string("value");
      });
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(calls.load(), 1);
  for (const std::string& r : results) EXPECT_EQ(r, "value");
  const CacheStats s = cache.stats();
  EXPECT_EQ(s.loads, 1u);
  EXPECT_EQ(s.misses, static_cast<std::uint64_t>(kThreads));
  EXPECT_EQ(s.hits, 0u);
}

TEST_F(TtlCacheTest, ALoaderFailureReachesEveryWaiterAndIsNotCached) {
  TtlCache<std::string, int> cache(manual(clock_));
  constexpr int kThreads = 8;
  std::atomic<int> calls{0}, failures{0};
  std::barrier start(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      start.arrive_and_wait();
      try {
        cache.get_or_load("k", [&](const std::string&) -> int {
          calls.fetch_add(1);
          std::this_thread::sleep_for(150ms);
          throw std::runtime_error("database down");
        });
      } catch (const std::runtime_error& e) {
        if (std::string(e.what()) == "database down") failures.fetch_add(1);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(failures.load(), kThreads);
  EXPECT_EQ(cache.stats().load_failures, 1u);
  EXPECT_EQ(cache.stats().entries, 0u);
  // The next caller loads again, and succeeds.
  EXPECT_EQ(cache.get_or_load("k", [](const std::string&) { return 7; }), 7);
  EXPECT_EQ(cache.stats().loads, 1u);
}

TEST_F(TtlCacheTest, ANegativeTtlIsRejectedBeforeAnythingIsLoaded) {
  TtlCache<std::string, int> cache(manual(clock_));
  int calls = 0;
  auto loader = [&](const std::string&) { return ++calls; };
  EXPECT_THROW(cache.get_or_load("k", loader, -1ms), std::invalid_argument);
  EXPECT_THROW(cache.reload("k", loader, -1ms), std::invalid_argument);
  EXPECT_THROW(cache.put("k", 1, -1ms), std::invalid_argument);
  EXPECT_EQ(calls, 0);
  auto later = start([&] { return cache.get_or_load("k", loader); });
  EXPECT_EQ(finish(later), 1) << "the key must not be left hanging";
  EXPECT_EQ(cache.stats().load_failures, 0u);
}

TEST_F(TtlCacheTest, AFailureAfterTheLoaderReturnedReachesEveryWaiterAndLeavesNoLoadBehind) {
  TtlCache<std::string, Fragile> cache(manual(clock_));
  std::promise<void> loading, release;
  auto first = start([&] {
    return cache
        .get_or_load("k",
                     [&](const std::string&) {
                       loading.set_value();
                       release.get_future().wait();
                       return Fragile(1);
                     })
        .value;
  });
  loading.get_future().wait();
  std::atomic<int> joined_loads{0};
  auto second = start([&] {
    return cache
        .get_or_load("k",
                     [&](const std::string&) {
                       joined_loads.fetch_add(1);
                       return Fragile(2);
                     })
        .value;
  });
  ASSERT_TRUE(poolscope::testing::eventually([&] { return cache.stats().misses == 2; }))
      << "the second caller must be waiting for the first load";
  Fragile::fail_copies = true;  // storing the loaded value now fails
  release.set_value();
  EXPECT_THROW(finish(first), std::runtime_error);
  EXPECT_THROW(finish(second), std::runtime_error) << "the waiter gets the failure, not a hang";
  Fragile::fail_copies = false;
  EXPECT_EQ(joined_loads.load(), 0);
  EXPECT_EQ(cache.stats().load_failures, 1u);
  EXPECT_EQ(cache.stats().entries, 0u);
  auto later = start(
      [&] { return cache.get_or_load("k", [](const std::string&) { return Fragile(3); }).value; });
  EXPECT_EQ(finish(later), 3) << "a later miss loads anew";
}

TEST_F(TtlCacheTest, AnInvalidationDuringALoadKeepsItsResultOutOfTheCache) {
  TtlCache<std::string, std::string> cache(manual(clock_));
  std::promise<void> loading, release;
  auto old_load = std::async(std::launch::async, [&] {
    return cache.get_or_load("k", [&](const std::string&) {
      loading.set_value();
      release.get_future().wait();
      return std::string("old");  // read before the invalidation
    });
  });
  loading.get_future().wait();
  EXPECT_EQ(cache.invalidate_glob("k*"), 0u);  // nothing cached yet, but the load is covered
  // A caller after the invalidation does not join the stale load: it loads anew.
  EXPECT_EQ(cache.get_or_load("k", [](const std::string&) { return std::string("new"); }), "new");
  release.set_value();
  EXPECT_EQ(old_load.get(), "old");  // its own caller still gets what it loaded
  EXPECT_EQ(cache.get(std::string("k")), "new") << "the stale result must not overwrite";
}

TEST_F(TtlCacheTest, APutDuringALoadWins) {
  TtlCache<std::string, std::string> cache(manual(clock_));
  std::promise<void> loading, release;
  auto load = std::async(std::launch::async, [&] {
    return cache.get_or_load("k", [&](const std::string&) {
      loading.set_value();
      release.get_future().wait();
      return std::string("loaded");
    });
  });
  loading.get_future().wait();
  cache.put("k", "put");
  release.set_value();
  EXPECT_EQ(load.get(), "loaded");
  EXPECT_EQ(cache.get(std::string("k")), "put");
}

TEST_F(TtlCacheTest, WarmLoadsTheMissingKeysAndCountsFailures) {
  TtlCache<std::string, int> cache(manual(clock_));
  cache.put("b", 2);
  const std::vector<std::string> keys = {"a", "b", "c", "bad"};
  const WarmResult r = cache.warm(keys, [](const std::string& key) {
    if (key == "bad") throw std::runtime_error("no such key");
    return static_cast<int>(key[0]);
  });
  EXPECT_EQ(r.loaded, 2u);
  EXPECT_EQ(r.present, 1u);
  EXPECT_EQ(r.failed, 1u);
  EXPECT_EQ(cache.get(std::string("c")), 'c');
  EXPECT_EQ(cache.stats().hits, 1u) << "warming itself is neither a hit nor a miss";
}

TEST_F(TtlCacheTest, WarmLeavesAKeyBeingLoadedToThatLoadWithoutWaitingOrCrediting) {
  TtlCache<std::string, int> cache(manual(clock_));
  std::promise<void> loading, release;
  auto load = start([&] {
    return cache.get_or_load("k", [&](const std::string&) {
      detail::credit_sessions_avoided(5);  // as if building it read five cached settings
      loading.set_value();
      release.get_future().wait();
      return 1;
    });
  });
  loading.get_future().wait();
  std::atomic<int> warm_loads{0};
  const std::vector<std::string> keys = {"k", "other"};
  auto warming = start([&] {
    return cache.warm(keys, [&](const std::string&) {
      warm_loads.fetch_add(1);
      return 2;
    });
  });
  const WarmResult r = finish(warming);  // returns while "k" is still loading
  EXPECT_EQ(r.in_progress, 1u);
  EXPECT_EQ(r.loaded, 1u);
  EXPECT_EQ(r.present, 0u);
  EXPECT_EQ(warm_loads.load(), 1) << "only \"other\" was loaded by warm";
  release.set_value();
  EXPECT_EQ(finish(load), 1);
  EXPECT_EQ(cache.stats().sessions_avoided, 0u) << "nothing was avoided: warm did not use the load";
  EXPECT_EQ(cache.get(std::string("k")), 1);
  EXPECT_EQ(cache.stats().sessions_avoided, 5u) << "a hit spares what the load cost";
}

TEST_F(TtlCacheTest, ReloadReplacesTheEntryAndItsHitsCountWhatTheReloadCost) {
  TtlCache<std::string, int> cache(manual(clock_));
  cache.put("k", 1);
  EXPECT_EQ(cache.reload("k",
                         [](const std::string&) {
                           detail::credit_sessions_avoided(3);
                           return 2;
                         }),
            2);
  EXPECT_EQ(cache.get(std::string("k")), 2);
  const CacheStats s = cache.stats();
  EXPECT_EQ(s.sessions_avoided, 3u);
  EXPECT_EQ(s.loads, 1u);
  EXPECT_EQ(s.misses, 0u) << "a reload is not a miss";
}

TEST_F(TtlCacheTest, AReloadSupersedesARunningLoad) {
  TtlCache<std::string, std::string> cache(manual(clock_));
  std::promise<void> loading, release;
  auto old_load = start([&] {
    return cache.get_or_load("k", [&](const std::string&) {
      loading.set_value();
      release.get_future().wait();
      return std::string("old");
    });
  });
  loading.get_future().wait();
  EXPECT_EQ(cache.reload("k", [](const std::string&) { return std::string("new"); }), "new");
  release.set_value();
  EXPECT_EQ(finish(old_load), "old");
  EXPECT_EQ(cache.get(std::string("k")), "new") << "the superseded load must not overwrite";
}

TEST_F(TtlCacheTest, VisitReadsTheValueInPlaceAndCountsAsGetDoes) {
  TtlCache<std::string, std::string> cache(manual(clock_));
  cache.put("a", "alpha");
  std::size_t length = 0;
  EXPECT_TRUE(cache.visit(std::string_view("a"), [&](const std::string& v) { length = v.size(); }));
  EXPECT_EQ(length, 5u);
  EXPECT_FALSE(
      cache.visit(std::string("b"), [&](const std::string&) { ADD_FAILURE() << "absent"; }));
  std::string seen;
  cache.visit_or_load(
      "b", [](const std::string&) { return std::string("beta"); },
      [&](const std::string& v) { seen = v; });
  EXPECT_EQ(seen, "beta");
  cache.visit_or_load(
      "b", [](const std::string&) -> std::string { throw std::logic_error("cached"); },
      [&](const std::string& v) { seen = v + "!"; });
  EXPECT_EQ(seen, "beta!");
  const CacheStats s = cache.stats();
  EXPECT_EQ(s.hits, 2u);
  EXPECT_EQ(s.misses, 2u);
  EXPECT_EQ(s.loads, 1u);
}

TEST_F(TtlCacheTest, BackgroundRefreshReloadsKeysThatAreReadAndLeavesOthers) {
  TtlCache<std::string, int> cache(manual(clock_));
  std::atomic<int> version{1};
  auto loader = [&](const std::string&) { return version.load(); };
  cache.get_or_load("hot", loader);
  cache.get_or_load("cold", loader);
  EXPECT_EQ(cache.get(std::string("hot")), 1);  // read since loaded: due for refresh
  version = 2;
  cache.enable_refresh(loader, 40ms);
  clock_->advance(50ms);
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (cache.stats().loads < 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(cache.get(std::string("hot")), 2);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(cache.get(std::string("cold")), 1) << "never read: not refreshed";
  EXPECT_THROW(cache.enable_refresh(loader, 40ms), std::logic_error);
}

TEST_F(TtlCacheTest, ConcurrentEnableRefreshStartsOneRefresher) {
  TtlCache<std::string, int> cache(manual(clock_));
  std::barrier start_together(2);
  std::atomic<int> refused{0};
  auto enable = [&] {
    start_together.arrive_and_wait();
    try {
      cache.enable_refresh([](const std::string&) { return 1; }, 1h);
    } catch (const std::logic_error&) {
      refused.fetch_add(1);
    }
  };
  std::thread a(enable), b(enable);
  a.join();
  b.join();
  EXPECT_EQ(refused.load(), 1);
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

TEST_F(TtlCacheTest, AnInvalidationListenerCarriesInvalidationsToAnotherCache) {
  // Two caches standing in for two processes, joined by a "bus".
  TtlCache<std::string, int> a(manual(clock_)), b(manual(clock_));
  int a_heard = 0, b_heard = 0;
  Subscription to_b = a.add_invalidation_listener([&](const Invalidation<std::string>& inv) {
    ++a_heard;
    b.apply(inv);
  });
  Subscription from_b =
      b.add_invalidation_listener([&](const Invalidation<std::string>&) { ++b_heard; });
  for (auto* cache : {&a, &b}) {
    for (const char* key : {"x:1", "x:2", "y:1", "z"}) cache->put(key, 1);
  }
  a.invalidate_glob("x:*");
  EXPECT_EQ(b.get(std::string("x:1")), std::nullopt);
  EXPECT_EQ(b.get(std::string("y:1")), 1);
  a.erase("z");
  EXPECT_EQ(b.get(std::string("z")), std::nullopt);
  a.invalidate_prefix("y:");
  EXPECT_EQ(b.get(std::string("y:1")), std::nullopt);
  a.clear();
  EXPECT_EQ(a_heard, 4);
  EXPECT_EQ(b_heard, 0) << "apply() must not echo back onto the bus";
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
