// What a process serves while it cannot hear other processes'
// invalidations: a save made while Redis hangs is never missed by another
// process for longer than its subscriber takes to find the link dead; while
// the link is down local entries live one tick; and after Redis is back the
// others' queued invalidations go out before anyone reads Redis again.

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "poolscope/cache/redis/redis_tier.h"
#include "redis_settings_fixture.h"
#include "redis_support.h"
#include "test_util.h"

namespace poolscope::cache {
namespace {

using namespace std::chrono_literals;
using poolscope::testing::Child;
using poolscope::testing::eventually;
using poolscope::testing::wait_subscribed;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}
double ms(std::chrono::milliseconds d) { return static_cast<double>(d.count()); }

class RedisCoherenceTest : public poolscope::testing::RedisSettingsTest {};

// Process A saves while Redis is stopped (SIGSTOP: it hangs, its TCP
// connections stay open). B read the old value before and holds it in its
// local cache, and Redis holds it too until A's invalidation gets there.
TEST_F(RedisCoherenceTest, ASaveWhileRedisHangsIsNeverMissedByAnotherProcessPastTheBound) {
  make_database(poolscope::testing::TestBackend::kPostgreSQL);
  const RedisTierConfig config{.url = redis_.server().url(), .prefix = prefix_};
  auto tier = std::make_shared<RedisTier>(config);
  SettingsCache a(*pool_, settings(tier));
  Child b(poolscope::testing::helper_argv(redis_.server().url(), prefix_, db_->url()));
  ASSERT_EQ(b.ask("wait-connected"), "ok");
  ASSERT_EQ(b.ask("settings s"), "ok");
  wait_subscribed(*tier);
  ASSERT_EQ(b.ask("read s 1 api_key"), "value key-1");  // in B's cache and in Redis
  ASSERT_EQ(b.ask("read s 1 api_key"), "value key-1");

  redis_.signal(SIGSTOP);
  const auto stopped = Clock::now();
  a.save(1, "api_key", "saved-while-hung");
  const double save_ms = ms_since(stopped);
  EXPECT_LE(save_ms, ms(config.timeout + 100ms)) << "the save paid one call's timeout at most";
  EXPECT_EQ(tier->stats().invalidations_pending, 1u) << "Redis could not take it";

  // B finds its link dead within ping_interval + timeout of its last PONG,
  // and from then serves nothing it cached before.
  double seen_ms = -1;
  int old_after_seen = 0;
  while (ms_since(stopped) < 1500) {
    const std::string v = b.ask("read s 1 api_key");
    if (v == "value saved-while-hung" && seen_ms < 0) seen_ms = ms_since(stopped);
    if (v != "value saved-while-hung" && seen_ms >= 0) ++old_after_seen;
    ASSERT_TRUE(v == "value saved-while-hung" || v == "value key-1") << v;
    std::this_thread::sleep_for(5ms);
  }
  const double bound_ms = ms(config.ping_interval + config.timeout + 200ms);
  ASSERT_GE(seen_ms, 0) << "B never saw the save while Redis hung";
  EXPECT_LE(seen_ms, bound_ms) << "ping_interval + timeout + 200 ms";
  EXPECT_EQ(old_after_seen, 0);

  // Redis answers again: A's queued invalidation goes out within a tick
  // (its breaker's back-off notwithstanding), inside the time B skips
  // Redis after subscribing again. B never reads the old value from Redis.
  redis_.signal(SIGCONT);
  const auto resumed = Clock::now();
  double sent_ms = -1;
  int old_after_resume = 0;
  while (ms_since(resumed) < 3000) {
    if (sent_ms < 0 && tier->stats().invalidations_pending == 0) sent_ms = ms_since(resumed);
    if (b.ask("read s 1 api_key") != "value saved-while-hung") ++old_after_resume;
    std::this_thread::sleep_for(5ms);
  }
  const double settle_ms = ms(config.connect_timeout + config.timeout + 200ms);
  ASSERT_GE(sent_ms, 0) << "A's invalidation was never sent";
  EXPECT_LE(sent_ms, settle_ms) << "sent within the settle time others wait";
  EXPECT_EQ(old_after_resume, 0);
  std::printf(
      "[ figure ] Redis hung: save %.1f ms; B saw it after %.1f ms (bound %.0f); after SIGCONT "
      "A's invalidation sent in %.1f ms (settle %.0f); old values served: %d\n",
      save_ms, seen_ms, bound_ms, sent_ms, settle_ms, old_after_seen + old_after_resume);

  // Coherence is back: B reads Redis again, and B's saves reach A.
  ASSERT_EQ(b.ask("wait-connected"), "ok");
  const std::uint64_t received = tier->stats().invalidations_received;
  ASSERT_EQ(b.ask("save s 2 api_key after-outage"), "ok");
  ASSERT_TRUE(eventually([&] { return tier->stats().invalidations_received > received; }));
  EXPECT_EQ(a.get<std::string>(2, "api_key"), "after-outage");
}

// While the subscriber is away, a bound cache keeps no entry longer than
// a tick (100 ms) and its reads skip Redis; once it is back (and the
// settle time has passed) entries live their TTL again.
TEST_F(RedisCoherenceTest, WhileTheLinkIsDownLocalEntriesLiveOneTick) {
  make_database(poolscope::testing::TestBackend::kSqlite);
  auto tier = std::make_shared<RedisTier>(RedisTierConfig{
      .url = redis_.server().url(), .prefix = prefix_, .backoff = 200ms, .max_backoff = 400ms});
  TtlCache<std::string, std::int64_t> cache({.name = "t", .ttl = 60s});
  RedisBinding binding = tier->attach(cache);
  wait_subscribed(*tier);
  std::atomic<int> loads{0};
  // The value is when it was loaded: its age is what a read was served.
  const auto load = [&](const std::string&) {
    loads.fetch_add(1);
    return static_cast<std::int64_t>(Clock::now().time_since_epoch().count());
  };
  const auto read_for = [&](std::chrono::milliseconds d) {
    double oldest = 0;
    long reads = 0;
    for (const auto until = Clock::now() + d; Clock::now() < until; ++reads) {
      const std::int64_t at = binding.get_or_load("k", load);
      const double age = std::chrono::duration<double, std::milli>(
                             Clock::now() - Clock::time_point(Clock::duration(at)))
                             .count();
      oldest = std::max(oldest, age);
      std::this_thread::sleep_for(1ms);
    }
    return std::pair{oldest, reads};
  };

  redis_.signal(SIGKILL);
  ASSERT_TRUE(eventually([&] { return !tier->stats().subscriber_connected; }));
  const int loads_before = loads.load();
  const std::uint64_t fallbacks = binding.stats().fallback_loads;
  const auto [oldest_down, reads_down] = read_for(1000ms);
  const int loads_down = loads.load() - loads_before;
  EXPECT_LE(oldest_down, 250.0) << "a tick (100 ms) and a margin";
  EXPECT_GE(loads_down, 4) << "entries were dropped while nothing could invalidate them";
  EXPECT_LE(loads_down * 10, reads_down) << "the cache still served most reads";
  EXPECT_EQ(binding.stats().fallback_loads - fallbacks, static_cast<std::uint64_t>(loads_down))
      << "every load skipped Redis";

  redis_.restart();
  wait_subscribed(*tier, 10s);
  std::this_thread::sleep_for(700ms);  // the settle time passes
  (void)binding.get_or_load("k", load);
  const int loads_up = loads.load();
  const auto [oldest_up, reads_up] = read_for(600ms);
  EXPECT_EQ(loads.load(), loads_up) << "entries live their TTL again";
  EXPECT_GE(oldest_up, 500.0);
  std::printf(
      "[ figure ] link down 1 s: %d loads for %ld reads, oldest value served %.0f ms; link up: "
      "%d loads for %ld reads\n",
      loads_down, reads_down, oldest_down, loads.load() - loads_up, reads_up);
}

// A load lock taken by a call that timed out: Redis runs the call when it
// can, and nobody would release the lock for lock_ttl (here a minute); the
// tier releases it within a tick of Redis taking writes again.
TEST_F(RedisCoherenceTest, ALockLeftByATimedOutCallIsReleasedWhenRedisAnswers) {
  const RedisTierConfig config{
      .url = redis_.server().url(), .prefix = prefix_, .lock_ttl = 60s, .ping_interval = 60s};
  auto tier = std::make_shared<RedisTier>(config);
  TtlCache<std::string, std::string> cache({.name = "c"});
  RedisBinding binding = tier->attach(cache);
  wait_subscribed(*tier);
  poolscope::testing::RawRedis raw(redis_.server());
  // Writes (and scripts) wait; reads go on: the GET misses, the lock
  // script is sent and times out, and the read falls back to its loader.
  ASSERT_EQ(raw.command({"CLIENT", "PAUSE", "1000", "WRITE"}), "OK");
  const auto paused = Clock::now();
  EXPECT_EQ(binding.get_or_load("k", [](const std::string&) { return std::string("db"); }), "db");
  EXPECT_EQ(binding.stats().fallback_loads, 1u);
  ASSERT_LT(ms_since(paused), 900.0) << "the read returned inside the pause";
  std::this_thread::sleep_for(std::chrono::milliseconds(1000) - (Clock::now() - paused));
  // The pause is over: Redis ran the lock script, and then our release.
  bool released = false;
  double released_ms = -1;
  const auto resumed = Clock::now();
  while (ms_since(resumed) < 2000 && !released) {
    released = raw.keys(prefix_ + ":c#lock:*").empty();
    if (released) released_ms = ms_since(resumed);
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_TRUE(released) << "the lock outlived the outage";
  EXPECT_LE(released_ms, 300.0) << "within a tick (100 ms) and a margin";
  // Another process finds no lock to wait for.
  auto other_tier = std::make_shared<RedisTier>(config);
  TtlCache<std::string, std::string> other({.name = "c"});
  RedisBinding other_binding = other_tier->attach(other);
  wait_subscribed(*other_tier);
  const auto started = Clock::now();
  EXPECT_EQ(other_binding.get_or_load("k", [](const std::string&) { return std::string("db2"); }),
            "db2");
  EXPECT_LT(ms_since(started), 100.0);
  EXPECT_EQ(other_binding.stats().lock_waited, 0u);
  std::printf("[ figure ] lock left by a timed-out call released %.1f ms after Redis took writes\n",
              released_ms);
}

}  // namespace
}  // namespace poolscope::cache
