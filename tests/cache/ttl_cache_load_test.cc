// TtlCache loads: single flight, failures, warm-up, reload, visit and
// background refresh.

#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "cache_test_util.h"
#include "poolscope/cache/ttl_cache.h"
#include "test_util.h"

namespace poolscope::cache {
namespace {

using namespace std::chrono_literals;
using testing::finish;
using testing::Fragile;
using testing::manual;
using testing::start;
using testing::TtlCacheTest;

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

}  // namespace
}  // namespace poolscope::cache
