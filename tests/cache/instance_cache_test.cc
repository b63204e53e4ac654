#include "poolscope/cache/instance_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <future>
#include <thread>
#include <vector>

#include "test_util.h"

namespace poolscope::cache {
namespace {

using namespace std::chrono_literals;

struct Account {
  explicit Account(int account_id) : id(account_id) {}
  int id;
};

class InstanceCacheTest : public ::testing::Test {
 protected:
  std::atomic<int> built_{0};
  InstanceCache<int, Account>::Factory factory_ = [this](const int& id) {
    built_.fetch_add(1);
    return std::make_shared<Account>(id);
  };
};

TEST_F(InstanceCacheTest, OneSharedInstancePerId) {
  InstanceCache<int, Account> accounts(factory_);
  const auto a = accounts.get(1);
  EXPECT_EQ(accounts.get(1), a);
  EXPECT_NE(accounts.get(2), a);
  EXPECT_EQ(accounts.get(2)->id, 2);
  EXPECT_EQ(built_.load(), 2);
  const CacheStats s = accounts.stats();
  EXPECT_EQ(s.name, "instances");
  EXPECT_EQ(s.hits, 2u);
  EXPECT_EQ(s.misses, 2u);
  EXPECT_EQ(s.entries, 2u);
}

TEST_F(InstanceCacheTest, ForceNewReplacesTheCachedInstance) {
  InstanceCache<int, Account> accounts(factory_);
  const auto old_instance = accounts.get(1);
  const auto fresh = accounts.get(1, /*force_new=*/true);
  EXPECT_NE(fresh, old_instance);
  EXPECT_EQ(accounts.get(1), fresh);
  EXPECT_EQ(old_instance->id, 1) << "holders keep the old instance alive";
  EXPECT_EQ(built_.load(), 2);
}

TEST_F(InstanceCacheTest, EvictionDropsTheInstance) {
  InstanceCache<int, Account> accounts(factory_, {.name = "accounts", .max_instances = 2});
  const auto one = accounts.get(1);
  EXPECT_TRUE(accounts.evict(1));
  EXPECT_NE(accounts.get(1), one);
  accounts.get(2);
  accounts.get(3);  // past max_instances: the least recently used goes
  EXPECT_EQ(accounts.stats().entries, 2u);
  EXPECT_EQ(accounts.stats().evictions_capacity, 1u);
  accounts.clear();
  EXPECT_EQ(accounts.peek(2), nullptr);
  EXPECT_EQ(accounts.stats().entries, 0u);
}

TEST_F(InstanceCacheTest, ConcurrentFirstRequestsBuildOneInstance) {
  InstanceCache<int, Account> accounts([this](const int& id) {
    built_.fetch_add(1);
    std::this_thread::sleep_for(100ms);
    return std::make_shared<Account>(id);
  });
  constexpr int kThreads = 16;
  std::barrier start(kThreads);
  std::vector<std::shared_ptr<Account>> got(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      got[i] = accounts.get(42);
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(built_.load(), 1);
  for (const auto& p : got) EXPECT_EQ(p, got[0]);
}

TEST_F(InstanceCacheTest, AFailedBuildIsNotCached) {
  bool fail = true;
  InstanceCache<int, Account> accounts([&](const int& id) {
    if (fail) throw std::runtime_error("account 1 is locked");
    return std::make_shared<Account>(id);
  });
  EXPECT_THROW(accounts.get(1), std::runtime_error);
  fail = false;
  EXPECT_EQ(accounts.get(1)->id, 1);
  EXPECT_EQ(accounts.stats().load_failures, 1u);
  InstanceCache<int, Account> nulls([](const int&) { return std::shared_ptr<Account>(); });
  EXPECT_THROW(nulls.get(1), std::logic_error);
}

TEST_F(InstanceCacheTest, AnInstancePastItsTtlIsRebuilt) {
  auto clock = std::make_shared<ManualClock>();
  InstanceCache<int, Account> accounts(factory_, {.ttl = 60s, .clock = clock});
  const auto first = accounts.get(1);
  clock->advance(59s);
  EXPECT_EQ(accounts.get(1), first);
  clock->advance(2s);
  EXPECT_NE(accounts.get(1), first);
}

TEST_F(InstanceCacheTest, ForceNewSupersedesABuildThatIsRunning) {
  std::promise<void> building, release;
  InstanceCache<int, Account> accounts([&](const int& id) {
    if (built_.fetch_add(1) == 0) {
      building.set_value();
      release.get_future().wait();
    }
    return std::make_shared<Account>(id);
  });
  auto first = std::async(std::launch::async, [&] { return accounts.get(1); });
  building.get_future().wait();
  const auto fresh = accounts.get(1, /*force_new=*/true);
  release.set_value();
  EXPECT_NE(first.get(), fresh);
  EXPECT_EQ(accounts.get(1), fresh) << "the superseded build must not replace the forced one";
}

TEST(InstanceCacheConfigTest, ValidateNamesTheInstanceCachesOwnFields) {
  auto message = [](auto breaks) {
    return poolscope::testing::validation_error<InstanceCacheConfig>(breaks);
  };
  EXPECT_EQ(message([](InstanceCacheConfig& c) { c.max_instances = 0; }),
            "InstanceCacheConfig.max_instances must be at least 1 (got 0)");
  EXPECT_EQ(message([](InstanceCacheConfig& c) { c.ttl = -5ms; }),
            "InstanceCacheConfig.ttl must not be negative (got -5 ms)");
  EXPECT_EQ(message([](InstanceCacheConfig& c) { c.name = ""; }),
            "InstanceCacheConfig.name must be 1 to 64 of A-Z a-z 0-9 _ . : - (got '')");
  EXPECT_EQ(message([](InstanceCacheConfig&) {}), "accepted");
  try {
    InstanceCache<int, Account> accounts(
        [](const int& id) { return std::make_shared<Account>(id); }, {.max_instances = 0});
    FAIL() << "a bad config must throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "InstanceCacheConfig.max_instances must be at least 1 (got 0)");
  }
}

}  // namespace
}  // namespace poolscope::cache
