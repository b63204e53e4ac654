// Invalidation through the tier in one process: SCAN + UNLINK removes exactly
// what a pattern matches, keys and patterns reach another tier's cache
// through pub/sub, and SettingsCache's one field shares loads and saves.

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "poolscope/cache/redis/redis_tier.h"
#include "redis_support.h"
#include "test_db.h"
#include "test_util.h"

namespace poolscope::cache {
namespace {

using namespace std::chrono_literals;
using poolscope::testing::eventually;
using poolscope::testing::fixture_redis;
using poolscope::testing::RawRedis;
using poolscope::testing::wait_subscribed;

using StringCache = TtlCache<std::string, std::string>;

class RedisInvalidationTest : public ::testing::Test {
 protected:
  RedisTierConfig config() const {
    return {.url = fixture_redis().url(), .prefix = prefix_, .lock_ttl = 2s};
  }
  std::size_t count(const std::string& match) { return raw_.keys(prefix_ + match).size(); }

  const std::string prefix_ = poolscope::testing::unique_prefix();
  RawRedis raw_{fixture_redis()};
};

TEST_F(RedisInvalidationTest, PatternDeletionRemovesExactlyTheMatchingKeysOutOf10000) {
  // 10,000 keys k0..k9999 in cache "c", plus neighbours that must survive:
  // the same keys in cache "c2", and the tier's own generation keys.
  std::vector<std::vector<std::string>> sets;
  for (int i = 0; i < 10'000; ++i) {
    sets.push_back({"SET", prefix_ + ":c:k" + std::to_string(i), "ps1;0;v"});
  }
  for (int i = 0; i < 100; ++i)
    sets.push_back({"SET", prefix_ + ":c2:k1" + std::to_string(i), "x"});
  for (const char* odd : {"x[1]", "x1", "a*b", "aXb", "q?", "qq", "back\\slash"}) {
    sets.push_back({"SET", prefix_ + ":c:" + odd, "ps1;0;v"});
  }
  raw_.pipeline(sets);
  ASSERT_EQ(count(":c:*"), 10'007u);

  RedisTier tier(config());
  StringCache cache({.name = "c"});
  RedisBinding shared = tier.attach(cache);
  cache.invalidate_glob("k1*");  // k1, k10-k19, k100-k199, k1000-k1999: 1,111 keys
  EXPECT_EQ(count(":c:k*"), 10'000u - 1'111u);
  EXPECT_TRUE(raw_.keys(prefix_ + ":c:k1*").empty());
  cache.invalidate_prefix("k2");  // another 1,111
  EXPECT_EQ(count(":c:k*"), 10'000u - 2 * 1'111u);
  EXPECT_EQ(raw_.command({"EXISTS", prefix_ + ":c:k3"}), "1");

  // Characters Redis's MATCH would read as patterns are literal here.
  cache.invalidate_glob("x[1]");
  EXPECT_EQ(raw_.command({"EXISTS", prefix_ + ":c:x[1]"}), "0");
  EXPECT_EQ(raw_.command({"EXISTS", prefix_ + ":c:x1"}), "1") << "'[1]' is no character class";
  cache.invalidate_glob("a\\*b");
  EXPECT_EQ(raw_.command({"EXISTS", prefix_ + ":c:a*b"}), "0");
  EXPECT_EQ(raw_.command({"EXISTS", prefix_ + ":c:aXb"}), "1") << "an escaped '*' is literal";
  cache.invalidate_prefix("q?");
  EXPECT_EQ(raw_.command({"EXISTS", prefix_ + ":c:q?"}), "0");
  EXPECT_EQ(raw_.command({"EXISTS", prefix_ + ":c:qq"}), "1") << "a prefix has no wildcards";
  EXPECT_EQ(count(":c2:*"), 100u) << "another cache's keys stay";

  cache.clear();
  EXPECT_EQ(count(":c:*"), 0u);
  EXPECT_EQ(count(":c2:*"), 100u);
  EXPECT_EQ(tier.stats().invalidations_published, 6u);
  EXPECT_EQ(tier.stats().errors, 0u);
}

TEST_F(RedisInvalidationTest, KeysAndPatternsReachTheOtherTiersCache) {
  RedisTier a(config()), b(config());
  StringCache ca({.name = "c"}), cb({.name = "c"});
  RedisBinding sa = a.attach(ca);
  RedisBinding sb = b.attach(cb);
  wait_subscribed(a);
  wait_subscribed(b);
  const auto load = [](const std::string& k) { return "v-" + k; };
  for (const char* k : {"pair:1", "pair:2", "pair:10", "user:1", "user:2", "other"}) {
    sb.get_or_load(k, load);
  }
  ASSERT_EQ(cb.stats().entries, 6u);
  const auto received = [&](std::uint64_t n) {
    return eventually([&] { return b.stats().invalidations_received == n; });
  };
  ca.erase("other");
  ASSERT_TRUE(received(1));
  EXPECT_FALSE(cb.get("other"));
  EXPECT_EQ(raw_.command({"EXISTS", prefix_ + ":c:other"}), "0");
  ca.invalidate_prefix("pair:");
  ASSERT_TRUE(received(2));
  EXPECT_FALSE(cb.get("pair:1"));
  EXPECT_FALSE(cb.get("pair:10"));
  EXPECT_TRUE(cb.get("user:1"));
  ca.invalidate_glob("user:?");
  ASSERT_TRUE(received(3));
  EXPECT_EQ(cb.stats().entries, 0u);
  EXPECT_EQ(count(":c:*"), 0u);
  EXPECT_EQ(a.stats().invalidations_received, 0u) << "a process skips its own broadcasts";
}

TEST_F(RedisInvalidationTest, IntegerKeysAndInstanceCachesTravelToo) {
  RedisTier a(config()), b(config());
  TtlCache<std::int64_t, std::string> ca({.name = "ids"}), cb({.name = "ids"});
  RedisBinding sa = a.attach(ca);
  RedisBinding sb = b.attach(cb);
  InstanceCache<int, std::string> ia(
      [](const int& id) { return std::make_shared<std::string>("account " + std::to_string(id)); },
      {.name = "accounts"});
  InstanceCache<int, std::string> ib(
      [](const int& id) { return std::make_shared<std::string>("account " + std::to_string(id)); },
      {.name = "accounts"});
  Subscription ea = a.attach(ia);
  Subscription eb = b.attach(ib);
  wait_subscribed(a);
  wait_subscribed(b);
  for (std::int64_t id : {5, 6})
    sb.get_or_load(id, [](std::int64_t i) { return std::to_string(i); });
  const std::shared_ptr<std::string> kept = ib.get(5);
  ib.get(6);
  ca.erase(5);
  ia.evict(5);
  ASSERT_TRUE(eventually([&] { return b.stats().invalidations_received == 2; }));
  EXPECT_FALSE(cb.get(5));
  EXPECT_TRUE(cb.get(6));
  EXPECT_EQ(ib.peek(5), nullptr);
  EXPECT_NE(ib.peek(6), nullptr);
  EXPECT_NE(ib.get(5), kept) << "a new instance after the remote eviction";
  EXPECT_EQ(raw_.keys(prefix_ + ":accounts:*").size(), 0u) << "instances are not stored in Redis";
}

class RedisSettingsTest : public RedisInvalidationTest {
 protected:
  void SetUp() override {
    fixture_redis();  // points POOLSCOPE_PG_ENV at the PostgreSQL fixture
    db_ = std::make_unique<poolscope::testing::TestDatabase>(
        poolscope::testing::TestBackend::kPostgreSQL);
    pool_a_ = std::make_unique<Pool>(db_->config(2));
    pool_b_ = std::make_unique<Pool>(db_->config(2));
    Lease sql = pool_a_->acquire();
    *sql << "CREATE TABLE account_settings (account_id INTEGER NOT NULL,"
            " setting_key VARCHAR(64) NOT NULL, setting_value VARCHAR(256) NOT NULL,"
            " PRIMARY KEY (account_id, setting_key))";
    *sql << "INSERT INTO account_settings VALUES (1, 'api_key', 'key-1'), (1, 'paper', 'true')";
  }
  SettingsCacheConfig settings_config(std::shared_ptr<RedisTier> tier) const {
    return {.name = "account_settings",
            .table = {"account_settings", "account_id", "setting_key", "setting_value"},
            .shared_tier = std::move(tier)};
  }

  std::unique_ptr<poolscope::testing::TestDatabase> db_;
  std::unique_ptr<Pool> pool_a_, pool_b_;
};

TEST_F(RedisSettingsTest, OneConfigFieldSharesLoadsAndSaves) {
  auto a = std::make_shared<RedisTier>(config());
  auto b = std::make_shared<RedisTier>(config());
  SettingsCache sa(*pool_a_, settings_config(a));
  SettingsCache sb(*pool_b_, settings_config(b));
  wait_subscribed(*a);
  wait_subscribed(*b);
  EXPECT_EQ(sa.get<std::string>(1, "api_key"), "key-1");
  EXPECT_EQ(pool_a_->stats().acquires, 2u) << "the table's setup, then one load";
  EXPECT_TRUE(sb.get<bool>(1, "paper"));
  EXPECT_EQ(pool_b_->stats().acquires, 0u) << "read from Redis, not the database";
  EXPECT_EQ(sb.stats().loads, 1u);
  EXPECT_EQ(raw_.command({"GET", prefix_ + ":account_settings:1"}),
            "ps1;1;2\n7:api_key5:key-15:paper4:true");

  sa.save(1, "api_key", "key-2");
  EXPECT_EQ(raw_.command({"EXISTS", prefix_ + ":account_settings:1"}), "0");
  ASSERT_TRUE(eventually([&] { return b->stats().invalidations_received == 1; }));
  EXPECT_EQ(sb.get<std::string>(1, "api_key"), "key-2");
  EXPECT_EQ(sa.get<std::string>(1, "api_key"), "key-2");
  const RedisTierStats s = b->stats();
  ASSERT_EQ(s.caches.size(), 1u);
  EXPECT_EQ(s.caches[0].cache, "account_settings");
  EXPECT_EQ(s.caches[0].loads + a->stats().caches[0].loads, 2u) << "one per version, in total";
}

TEST_F(RedisSettingsTest, InstancesBuiltFromSettingsFollowASaveElsewhere) {
  // Each process: settings with the tier, account objects built from them,
  // and the incidents' listener that evicts an account when its settings go.
  struct Process {
    Process(Pool& pool, SettingsCacheConfig config)
        : settings(pool, std::move(config)),
          accounts(
              [this](const int& id) {
                return std::make_shared<std::string>(settings.get<std::string>(id, "api_key"));
              },
              {.name = "accounts"}),
          evict(settings.cache().add_invalidation_listener([this](const auto& i) {
            if (i.key) accounts.evict(static_cast<int>(*i.key));
          })) {}
    SettingsCache settings;
    InstanceCache<int, std::string> accounts;
    Subscription evict;
  };
  auto a_tier = std::make_shared<RedisTier>(config());
  auto b_tier = std::make_shared<RedisTier>(config());
  Process a(*pool_a_, settings_config(a_tier));
  Process b(*pool_b_, settings_config(b_tier));
  Subscription a_accounts = a_tier->attach(a.accounts);  // evictions travel too
  Subscription b_accounts = b_tier->attach(b.accounts);
  wait_subscribed(*a_tier);
  wait_subscribed(*b_tier);
  EXPECT_EQ(*b.accounts.get(1), "key-1");
  a.settings.save(1, "api_key", "key-2");
  // The settings' invalidation, then the account's eviction, in that order.
  ASSERT_TRUE(eventually([&] { return b_tier->stats().invalidations_received == 2; }));
  EXPECT_EQ(b.accounts.peek(1), nullptr);
  EXPECT_EQ(*b.accounts.get(1), "key-2");
}

}  // namespace
}  // namespace poolscope::cache
