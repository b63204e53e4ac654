// RedisTier in one process, against the fixture's Redis: the read path, TTLs,
// codecs, locks, credentials, databases and lifetimes. Two RedisTier objects
// stand for two processes where only Redis's view matters; the real
// cross-process tests are in redis_process_test.cc.

#include "poolscope/cache/redis/redis_tier.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "capturing_sink.h"
#include "poolscope/cache/sessions.h"
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

RedisTierConfig tier_config(const std::string& url, const std::string& prefix) {
  RedisTierConfig c;
  c.url = url;
  c.prefix = prefix;
  c.lock_ttl = 2s;
  return c;
}

class RedisTierTest : public ::testing::Test {
 protected:
  RedisTierConfig config() const { return tier_config(fixture_redis().url(), prefix_); }
  std::string key(const std::string& cache, const std::string& k) const {
    return prefix_ + ":" + cache + ":" + k;
  }

  const std::string prefix_ = poolscope::testing::unique_prefix();
  RawRedis raw_{fixture_redis()};
};

TEST_F(RedisTierTest, AMissLoadsOnceAndTheOtherTierReadsRedis) {
  RedisTier a(config()), b(config());
  StringCache ca({.name = "c", .ttl = 60s}), cb({.name = "c", .ttl = 60s});
  RedisBinding sa = a.attach(ca);
  RedisBinding sb = b.attach(cb);
  wait_subscribed(a);  // a cache attached before the first subscription is flushed by it
  wait_subscribed(b);
  EXPECT_EQ(sa.get_or_load("k", [](const std::string&) { return std::string("v1"); }), "v1");
  RedisCacheTierStats s = sa.stats();
  EXPECT_EQ(s.redis_misses, 1u);
  EXPECT_EQ(s.lock_acquired, 1u);
  EXPECT_EQ(s.loads, 1u);
  EXPECT_EQ(s.stores, 1u);
  EXPECT_EQ(raw_.command({"GET", key("c", "k")}), "ps1;0;v1");
  const long long pttl = std::stoll(raw_.command({"PTTL", key("c", "k")}));
  EXPECT_GT(pttl, 55'000);
  EXPECT_LE(pttl, 60'000);
  EXPECT_EQ(raw_.command({"EXISTS", prefix_ + ":c#lock:k"}), "0") << "the lock was released";

  int loads = 0;
  const auto never = [&](const std::string&) { return ++loads, std::string("other"); };
  EXPECT_EQ(sb.get_or_load("k", never), "v1");
  EXPECT_EQ(loads, 0);
  EXPECT_EQ(sb.stats().redis_hits, 1u);
  const std::uint64_t calls = b.stats().calls;
  EXPECT_EQ(sb.get_or_load("k", never), "v1");
  EXPECT_EQ(b.stats().calls, calls) << "a local hit asks Redis nothing";
  EXPECT_EQ(sb.stats().local_hits, 1u);
}

TEST_F(RedisTierTest, TtlsPerCacheAndPerEntry) {
  RedisTier tier(config());
  StringCache plain({.name = "plain", .ttl = 60s}), forever({.name = "forever", .ttl = 0ms});
  StringCache shorter({.name = "shorter", .ttl = 60s});
  RedisBinding p = tier.attach(plain);
  RedisBinding f = tier.attach(forever);
  RedisBinding s = tier.attach(shorter, RedisCacheOptions{.ttl = 5s});
  const auto load = [](const std::string& k) { return "v-" + k; };
  p.get_or_load("a", load);
  p.get_or_load("b", load, 2s);
  f.get_or_load("a", load);
  s.get_or_load("a", load);
  const auto pttl = [&](const std::string& k) { return std::stoll(raw_.command({"PTTL", k})); };
  EXPECT_GT(pttl(key("plain", "a")), 50'000);
  EXPECT_LE(pttl(key("plain", "b")), 2'000) << "the entry's TTL";
  EXPECT_GT(pttl(key("plain", "b")), 0);
  EXPECT_EQ(pttl(key("forever", "a")), -1) << "a cache TTL of zero: no expiry";
  EXPECT_LE(pttl(key("shorter", "a")), 5'000) << "RedisCacheOptions.ttl";
}

TEST_F(RedisTierTest, AValueThatDoesNotDecodeIsACountedMissAndIsReplaced) {
  RedisTier tier(config());
  TtlCache<std::string, int> ints({.name = "ints"});
  RedisBinding shared = tier.attach(ints);
  for (const char* bad : {"garbage", "ps1;0;not-a-number", "ps1;x;1", "ps1;0"}) {
    const std::string k = std::string("k-") + bad;
    raw_.command({"SET", key("ints", k), bad});
    EXPECT_EQ(shared.get_or_load(k, [](const std::string&) { return 42; }), 42) << bad;
    EXPECT_EQ(raw_.command({"GET", key("ints", k)}), "ps1;0;42") << "replaced by a good value";
  }
  RedisCacheTierStats s = shared.stats();
  EXPECT_EQ(s.decode_failures, 4u);
  EXPECT_EQ(s.loads, 4u);
  EXPECT_EQ(s.redis_hits, 0u);

  // A user codec that throws: the same counted miss, never an exception.
  TtlCache<std::string, int> odd({.name = "odd"});
  RedisCodec<int> throwing{
      [](const int& v) { return std::to_string(v); },
      [](std::string_view) -> std::optional<int> { throw std::runtime_error("bad codec"); }};
  RedisBinding o = tier.attach(odd, throwing);
  raw_.command({"SET", key("odd", "k"), "ps1;0;7"});
  EXPECT_EQ(o.get_or_load("k", [](const std::string&) { return 8; }), 8);
  EXPECT_EQ(o.stats().decode_failures, 1u);
}

TEST_F(RedisTierTest, ALoaderErrorReachesTheCallerAndFreesTheLock) {
  RedisTier tier(config());
  StringCache cache({.name = "c"});
  RedisBinding shared = tier.attach(cache);
  EXPECT_THROW(shared.get_or_load(
                   "k", [](const std::string&) -> std::string { throw std::runtime_error("db"); }),
               std::runtime_error);
  EXPECT_EQ(raw_.command({"EXISTS", prefix_ + ":c#lock:k"}), "0");
  EXPECT_EQ(raw_.command({"EXISTS", key("c", "k")}), "0");
  EXPECT_EQ(shared.get_or_load("k", [](const std::string&) { return std::string("ok"); }), "ok");
  EXPECT_EQ(shared.stats().loads, 2u);
}

TEST_F(RedisTierTest, AnInvalidationDuringALoadKeepsItsValueOutOfRedis) {
  RedisTier a(config()), b(config());
  StringCache ca({.name = "c"}), cb({.name = "c"});
  RedisBinding sa = a.attach(ca);
  RedisBinding sb = b.attach(cb);
  std::mutex mu;
  std::condition_variable cv;
  bool loading = false, go = false;
  std::thread loader([&] {
    sa.get_or_load("k", [&](const std::string&) {
      std::unique_lock lock(mu);
      loading = true;
      cv.notify_all();
      cv.wait(lock, [&] { return go; });
      return std::string("read before the save");
    });
  });
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return loading; });
  }
  cb.erase("k");  // another process saved and invalidated meanwhile
  {
    std::lock_guard lock(mu);
    go = true;
  }
  cv.notify_all();
  loader.join();
  EXPECT_EQ(raw_.command({"EXISTS", key("c", "k")}), "0") << "the stale load was not stored";
  EXPECT_EQ(sa.stats().stores, 0u);
  EXPECT_EQ(raw_.command({"EXISTS", prefix_ + ":c#lock:k"}), "0");
  EXPECT_EQ(sb.get_or_load("k", [](const std::string&) { return std::string("fresh"); }), "fresh");
}

TEST_F(RedisTierTest, AWrongPasswordCostsNoErrorAndShowsNowhere) {
  const std::string secret = "wrong-pw-8d1f3c";
  auto [logger, sink] = poolscope::testing::CapturingSink::logger("redis-wrong-password");
  RedisTierConfig c = config();
  c.url = "redis://:" + secret + "@127.0.0.1:" + std::to_string(fixture_redis().port) + "/0";
  c.logger = logger;
  RedisTier tier(c);
  StringCache cache({.name = "c"});
  RedisBinding shared = tier.attach(cache);
  for (int i = 0; i < 10; ++i) {
    const std::string k = "k" + std::to_string(i);
    EXPECT_EQ(shared.get_or_load(k, [](const std::string& key) { return "db-" + key; }), "db-" + k);
  }
  // The reads skipped Redis (its subscriber never got in); the
  // subscriber's failed attempts open the breaker.
  EXPECT_TRUE(eventually([&] { return tier.stats().state == RedisTierState::kBackingOff; }));
  const RedisTierStats s = tier.stats();
  EXPECT_EQ(s.breaker_opened, 1u);
  EXPECT_GE(s.errors, 3u);
  EXPECT_EQ(shared.stats().fallback_loads, 10u);
  EXPECT_EQ(s.url, "redis://:***@127.0.0.1:" + std::to_string(fixture_redis().port) + "/0");
  try {
    tier.ping();
    ADD_FAILURE() << "ping() with a wrong password succeeded";
  } catch (const RedisError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("authentication failed"), std::string::npos) << m;
    EXPECT_NE(m.find("WRONGPASS"), std::string::npos) << m;
    EXPECT_NE(m.find("redis://:***@127.0.0.1"), std::string::npos) << m;
    EXPECT_EQ(m.find(secret), std::string::npos) << m;
  }
  EXPECT_TRUE(eventually([&] { return !sink->matching("authentication failed").empty(); }));
  EXPECT_EQ(sink->matching("calls failed in a row").size(), 1u) << "logged once, not per call";
  for (const std::string& line : sink->lines())
    EXPECT_EQ(line.find(secret), std::string::npos) << line;

  // The ACL user with a wrong password: the same.
  RedisTierConfig u = config();
  u.url = "redis://" + fixture_redis().user + ":" + secret +
          "@127.0.0.1:" + std::to_string(fixture_redis().port);
  RedisTier user_tier(u);
  EXPECT_THROW(user_tier.ping(), RedisError);
}

TEST_F(RedisTierTest, AnAclUserSelectsItsDatabaseAndUnixSocketsWork) {
  RedisTier user_tier(tier_config(fixture_redis().user_url(3), prefix_));
  EXPECT_NO_THROW(user_tier.ping());
  StringCache c3({.name = "c"});
  RedisBinding s3 = user_tier.attach(c3);
  s3.get_or_load("k", [](const std::string&) { return std::string("in db 3"); });
  RawRedis db3(fixture_redis(), 3);
  EXPECT_EQ(db3.command({"GET", key("c", "k")}), "ps1;0;in db 3");
  EXPECT_EQ(raw_.command({"EXISTS", key("c", "k")}), "0") << "not in database 0";

  RedisTier unix_tier(tier_config(fixture_redis().unix_url(4), prefix_));
  EXPECT_NO_THROW(unix_tier.ping());
  StringCache c4({.name = "c"});
  RedisBinding s4 = unix_tier.attach(c4);
  s4.get_or_load("k", [](const std::string&) { return std::string("in db 4"); });
  RawRedis db4(fixture_redis(), 4);
  EXPECT_EQ(db4.command({"GET", key("c", "k")}), "ps1;0;in db 4");
  EXPECT_EQ(unix_tier.stats().errors, 0u);
}

TEST_F(RedisTierTest, CacheNamesWithAColonOrTakenTwiceAreRefused) {
  RedisTier tier(config());
  StringCache colon({.name = "a:b"}), first({.name = "same"}), second({.name = "same"});
  try {
    tier.attach(colon);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(),
                 "RedisTier: cache name 'a:b' must not contain ':' (Redis keys are "
                 "{prefix}:{cache}:{key})");
  }
  RedisBinding one = tier.attach(first);
  EXPECT_THROW(tier.attach(second), std::invalid_argument);
  { RedisBinding gone = std::move(one); }
  EXPECT_NO_THROW(RedisBinding again = tier.attach(second)) << "free once the first is gone";
}

TEST_F(RedisTierTest, ReadersMayOutliveTheTierAndCachesTheirBindings) {
  auto tier = std::make_unique<RedisTier>(config());
  StringCache cache({.name = "c"});
  std::optional<RedisBinding<std::string, std::string>> shared(tier->attach(cache));
  shared->get_or_load("k", [](const std::string&) { return std::string("v"); });
  std::atomic<bool> stop{false};
  std::atomic<int> reads{0}, after{0};
  std::thread scraper([&, watch = tier->watch(), source = tier.get()] {
    while (!stop.load()) {
      if (auto alive = watch.lock()) {
        RedisTierStats s = source->stats();
        EXPECT_EQ(s.caches.size(), 1u);
        reads.fetch_add(1);
      } else {
        after.fetch_add(1);
      }
    }
  });
  ASSERT_TRUE(eventually([&] { return reads.load() > 10; }));
  tier.reset();  // while the scraper reads
  ASSERT_TRUE(eventually([&] { return after.load() > 10; }));
  stop = true;
  scraper.join();
  // The binding outlived its tier: the cache works on its own.
  EXPECT_EQ(shared->get_or_load("k2", [](const std::string&) { return std::string("local"); }),
            "local");
  EXPECT_EQ(shared->stats().fallback_loads, 1u);
  cache.erase("k");  // its listener finds the tier gone: nothing to do
  shared.reset();
}

TEST_F(RedisTierTest, LoaderCallablesGoThroughRedisAndMayOutliveTheBinding) {
  RedisTier tier(config());
  StringCache cache({.name = "c"});
  std::optional<RedisBinding<std::string, std::string>> shared(tier.attach(cache));
  wait_subscribed(tier);
  raw_.command({"SET", key("c", "a"), "ps1;0;from redis"});
  auto load = shared->loader([](const std::string& k) { return "db-" + k; });
  const std::vector<std::string> keys = {"a", "b"};
  EXPECT_EQ(cache.warm(keys, load).loaded, 2u);
  EXPECT_EQ(cache.get("a"), "from redis");
  EXPECT_EQ(cache.get("b"), "db-b");
  EXPECT_EQ(raw_.command({"GET", key("c", "b")}), "ps1;0;db-b") << "shared with the others";
  shared.reset();
  EXPECT_EQ(cache.get_or_load("c", load), "db-c");
  EXPECT_EQ(raw_.command({"EXISTS", key("c", "c")}), "0") << "unbound: no Redis any more";
}

TEST_F(RedisTierTest, RedisHitsCreditTheSessionsTheirLoadTook) {
  poolscope::testing::TestDatabase db(poolscope::testing::TestBackend::kSqlite);
  Pool pool(db.config(2));
  RedisTier a(config()), b(config());
  StringCache ca({.name = "c"}), cb({.name = "c"});
  RedisBinding sa = a.attach(ca);
  RedisBinding sb = b.attach(cb);
  wait_subscribed(b);  // a cache attached before the first subscription is flushed by it
  const auto query = [&](const std::string& k) {
    Lease one = pool.acquire();
    Lease other = pool.acquire_new();
    return "v-" + k;
  };
  sa.get_or_load("k", query);  // two checkouts
  std::string stored = raw_.command({"GET", key("c", "k")});
  EXPECT_EQ(stored, "ps1;2;v-k");
  const std::uint64_t before = sessions_avoided_on_this_thread();
  const std::uint64_t acquires = pool.stats().acquires;
  EXPECT_EQ(sb.get_or_load("k", query), "v-k");
  EXPECT_EQ(pool.stats().acquires, acquires) << "read from Redis";
  EXPECT_EQ(sessions_avoided_on_this_thread() - before, 2u);
  EXPECT_EQ(sb.stats().sessions_avoided, 2u);
  sb.get_or_load("k", query);  // a local hit on that entry spares the same two
  EXPECT_EQ(cb.stats().sessions_avoided, 2u);
  EXPECT_EQ(sessions_avoided_on_this_thread() - before, 4u);
}

}  // namespace
}  // namespace poolscope::cache
