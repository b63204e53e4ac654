// Redis failing under the tier, on a redis-server of the test's own: killed
// and restarted mid-run (SIGKILL), and hung (SIGSTOP). Callers see latency,
// never an error or a wrong value, and coherence comes back by itself.

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <sstream>
#include <thread>

#include "capturing_sink.h"
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

long long stat_of(const std::string& line, const std::string& name) {
  std::istringstream in(line);
  for (std::string word; in >> word;) {
    if (word.starts_with(name + "=")) return std::stoll(word.substr(name.size() + 1));
  }
  throw std::runtime_error("no " + name + " in '" + line + "'");
}

// Threads reading settings all the way through a test: every value must
// be the database's (entity 1 is saved as "saved-in-outage": either then).
class Readers {
 public:
  explicit Readers(SettingsCache& cache) {
    for (int t = 0; t < 3; ++t) threads_.emplace_back([this, &cache, t] { run(cache, t); });
  }
  ~Readers() { stop(); }
  void stop() {
    stop_ = true;
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

  std::atomic<long> reads{0}, errors{0}, wrong{0};

 private:
  void run(SettingsCache& cache, int t) {
    for (long i = 0; !stop_.load(); ++i) {
      const int entity = static_cast<int>((i * 7 + t) % 200) + 1;
      try {
        const std::string v = cache.get<std::string>(entity, "api_key");
        if (v != "key-" + std::to_string(entity) && !(entity == 1 && v == "saved-in-outage")) {
          wrong.fetch_add(1);
        }
        reads.fetch_add(1);
      } catch (...) {
        errors.fetch_add(1);
      }
      if (i % 50 == 0) cache.clear();  // keep reads going to Redis and the database
    }
  }

  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

class RedisTierFaultTest : public poolscope::testing::RedisSettingsTest {};

TEST_F(RedisTierFaultTest, RedisKilledAndRestartedCostsNoErrorsAndCoherenceReturns) {
  make_database(poolscope::testing::TestBackend::kPostgreSQL);
  auto [logger, sink] = poolscope::testing::CapturingSink::logger("redis-restart");
  RedisTierConfig c{.url = redis_.server().url(),
                    .prefix = prefix_,
                    .backoff = 200ms,
                    .max_backoff = 400ms,
                    .ping_interval = 200ms};
  c.logger = logger;
  auto tier = std::make_shared<RedisTier>(c);
  SettingsCache a(*pool_, settings(tier));
  Child b(poolscope::testing::helper_argv(redis_.server().url(), prefix_, db_->url()));
  ASSERT_EQ(b.ask("wait-connected"), "ok");
  ASSERT_EQ(b.ask("settings s"), "ok");
  wait_subscribed(*tier);

  Readers readers(a);
  ASSERT_EQ(b.ask("read s 1 api_key"), "value key-1");
  std::this_thread::sleep_for(300ms);
  const long reads_before = readers.reads.load();
  const std::uint64_t flushes_before = tier->stats().subscriber_flushes;
  const long long b_flushes_before = stat_of(b.ask("stats"), "flushes");
  redis_.signal(SIGKILL);
  ASSERT_TRUE(eventually([&] { return tier->stats().state != RedisTierState::kUp; }));
  ASSERT_TRUE(eventually([&] { return !tier->stats().subscriber_connected; }));
  a.save(1, "api_key", "saved-in-outage");  // committed; Redis cannot hear of it yet
  EXPECT_GE(tier->stats().invalidations_pending, 1u);
  EXPECT_EQ(a.get<std::string>(1, "api_key"), "saved-in-outage");
  std::this_thread::sleep_for(500ms);
  const long reads_in_outage = readers.reads.load();
  redis_.restart();

  ASSERT_TRUE(eventually(
      [&] {
        const RedisTierStats s = tier->stats();
        return s.state == RedisTierState::kUp && s.subscriber_connected &&
               s.subscriber_connects >= 2 && s.invalidations_pending == 0;
      },
      10s));
  ASSERT_TRUE(eventually(
      [&] {
        const std::string s = b.ask("stats");
        return stat_of(s, "connected") == 1 && stat_of(s, "connects") >= 2 &&
               stat_of(s, "flushes") > b_flushes_before;
      },
      10s))
      << b.ask("stats");
  const RedisTierStats s = tier->stats();
  EXPECT_GE(s.breaker_opened, 1u);
  EXPECT_GE(s.breaker_closed, 1u);
  EXPECT_GT(s.subscriber_flushes, flushes_before) << "flushed when it subscribed again";
  // Coherence: B flushed what it may have missed, so it reads the save...
  EXPECT_EQ(b.ask("read s 1 api_key"), "value saved-in-outage");
  // ...and a save in B reaches this process again through the broadcast.
  const std::uint64_t received = s.invalidations_received;
  ASSERT_EQ(b.ask("save s 2 api_key key-2"), "ok");  // the same value: readers stay right
  ASSERT_TRUE(eventually([&] { return tier->stats().invalidations_received > received; }));

  readers.stop();
  EXPECT_EQ(readers.errors.load(), 0) << "Redis's death reached no caller";
  EXPECT_EQ(readers.wrong.load(), 0);
  EXPECT_GT(reads_in_outage, reads_before) << "reads went on without Redis";
  EXPECT_EQ(sink->matching("calls failed in a row").size(), s.breaker_opened);
  EXPECT_EQ(sink->matching("subscriber lost its connection").size(), 1u) << "once per outage";
  EXPECT_EQ(sink->matching("subscriber connected again").size(), 1u);
  for (const std::string& line : sink->lines()) {
    EXPECT_EQ(line.find(redis_.server().password), std::string::npos) << line;
  }
}

TEST_F(RedisTierFaultTest, AHungRedisCostsAReadItsTimeoutAndTheValueComesFromTheDatabase) {
  make_database(poolscope::testing::TestBackend::kSqlite);
  constexpr auto kTimeout = 200ms;
  // A threshold no test reaches: reads meet the hung Redis until the
  // subscriber finds its link dead (no PONG), then skip it.
  auto tier = std::make_shared<RedisTier>(RedisTierConfig{.url = redis_.server().url(),
                                                          .prefix = prefix_,
                                                          .timeout = kTimeout,
                                                          .failure_threshold = 1000,
                                                          .ping_interval = 300ms});
  // The default threshold, and a subscriber that PINGs too rarely to
  // notice: only the breaker stands between reads and the hung Redis.
  auto breaking = std::make_shared<RedisTier>(RedisTierConfig{.url = redis_.server().url(),
                                                              .prefix = prefix_ + "b",
                                                              .timeout = kTimeout,
                                                              .backoff = 60s,
                                                              .max_backoff = 60s,
                                                              .ping_interval = 60s});
  SettingsCache hung(*pool_, settings(tier));
  SettingsCache s2(*pool_, settings(breaking));
  wait_subscribed(*tier);
  wait_subscribed(*breaking);
  EXPECT_EQ(hung.get<std::string>(100, "api_key"), "key-100");  // Redis works
  redis_.signal(SIGSTOP);
  std::chrono::nanoseconds slowest{0};
  for (int entity = 1; entity <= 10; ++entity) {
    const auto started = std::chrono::steady_clock::now();
    EXPECT_EQ(hung.get<std::string>(entity, "api_key"), "key-" + std::to_string(entity));
    slowest = std::max(slowest, std::chrono::steady_clock::now() - started);
  }
  EXPECT_LE(slowest, kTimeout + 100ms) << "within the timeout + 100 ms";
  const RedisTierStats s = tier->stats();
  EXPECT_GE(s.timeouts, 1u) << "the first read met the hung Redis";
  EXPECT_EQ(s.caches.at(0).fallback_loads, 10u);
  EXPECT_TRUE(eventually([&] { return !tier->stats().subscriber_connected; }, 3s))
      << "its PING went unanswered";
  const std::uint64_t timeouts = tier->stats().timeouts;
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(hung.get<std::string>(11, "api_key"), "key-11");
  EXPECT_LT(std::chrono::steady_clock::now() - started, 50ms) << "a dead link: Redis is skipped";
  EXPECT_EQ(tier->stats().timeouts, timeouts);
  std::printf("[ figure ] read with Redis stopped (SIGSTOP), timeout %lld ms: slowest %.1f ms\n",
              static_cast<long long>(kTimeout.count()),
              std::chrono::duration<double, std::milli>(slowest).count());

  // Three reads pay, then none does.
  std::chrono::nanoseconds after_open{0};
  for (int entity = 11; entity <= 30; ++entity) {
    const auto t = std::chrono::steady_clock::now();
    EXPECT_EQ(s2.get<std::string>(entity, "api_key"), "key-" + std::to_string(entity));
    if (entity > 13) after_open = std::max(after_open, std::chrono::steady_clock::now() - t);
  }
  EXPECT_EQ(breaking->stats().state, RedisTierState::kBackingOff);
  EXPECT_TRUE(breaking->stats().subscriber_connected) << "it did not notice";
  EXPECT_LT(after_open, 50ms) << "an open breaker costs a read nothing";
  redis_.signal(SIGCONT);
}

// A busy writer while Redis is dead: the queue of invalidations for Redis
// stays bounded (collapsed into one clear per cache, again and again), the
// log says so once, and the queue is sent when Redis is back.
TEST_F(RedisTierFaultTest, AFullInvalidationQueueCollapsesSaysSoOnceAndIsSentOnReturn) {
  make_database(poolscope::testing::TestBackend::kSqlite);
  auto [logger, sink] = poolscope::testing::CapturingSink::logger("redis-queue");
  RedisTierConfig c{.url = redis_.server().url(),
                    .prefix = prefix_,
                    .backoff = 200ms,
                    .max_backoff = 400ms,
                    .ping_interval = 200ms,
                    .max_pending_invalidations = 8};
  c.logger = logger;
  auto tier = std::make_shared<RedisTier>(c);
  SettingsCache cache(*pool_, settings(tier));
  wait_subscribed(*tier);
  redis_.signal(SIGKILL);
  ASSERT_TRUE(eventually([&] { return !tier->stats().subscriber_connected; }));
  for (int entity = 1; entity <= 100; ++entity) {
    cache.save(entity, "api_key", "key-" + std::to_string(entity));  // 12 times past the bound
    EXPECT_LE(tier->stats().invalidations_pending, 8u);
  }
  EXPECT_GE(tier->stats().invalidations_pending, 1u);
  EXPECT_EQ(sink->matching("invalidations are waiting for Redis").size(), 1u)
      << "once per outage, not once per 8 saves";
  redis_.restart();
  ASSERT_TRUE(eventually(
      [&] {
        const RedisTierStats s = tier->stats();
        return s.state == RedisTierState::kUp && s.invalidations_pending == 0;
      },
      10s));
  EXPECT_TRUE(eventually([&] { return sink->matching("have been sent").size() == 1u; }));
  EXPECT_EQ(sink->matching("invalidations are waiting for Redis").size(), 1u);
  EXPECT_EQ(cache.get<std::string>(7, "api_key"), "key-7");
}

}  // namespace
}  // namespace poolscope::cache
