// MetricsCollector::add_redis_tier on a real RedisTier (the CTest fixture's
// Redis): the poolscope_redis_* families move with what the tier does, the
// JSON lists the tier with its URL redacted, and a tier destroyed before the
// collector while another thread scrapes leaves the scrape, never crashes it.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "exposition.h"
#include "poolscope/cache/redis/redis_tier.h"
#include "poolscope/exporters/metrics_collector.h"
#include "redis_support.h"
#include "test_util.h"

namespace poolscope::exporters {
namespace {

using cache::RedisTier;
using cache::RedisTierConfig;
using cache::TtlCache;
using poolscope::testing::fixture_redis;
using poolscope::testing::parse_samples;
using poolscope::testing::unique_prefix;

// The value of the one series of name whose labels include every one of
// labels (each as printed: key="value"); -1 if none.
double sample(const std::string& text, const std::string& name,
              const std::vector<std::string>& labels) {
  for (const auto& [series, value] : parse_samples(text)) {
    if (series.substr(0, series.find('{')) != name) continue;
    bool all = true;
    for (const std::string& l : labels) all = all && series.find(l) != std::string::npos;
    if (all) return value;
  }
  return -1;
}

std::unique_ptr<RedisTier> make_tier(const std::string& prefix) {
  return std::make_unique<RedisTier>(
      RedisTierConfig{.url = fixture_redis().url(), .prefix = prefix});
}

TEST(RedisTierMetricsTest, TheTiersFamiliesFollowWhatTheTierDid) {
  const std::string prefix = unique_prefix();
  const auto tier = make_tier(prefix);
  const auto other = make_tier(prefix);  // a second "process" on the same Redis
  TtlCache<std::string, std::string> configs({.name = "configs"});
  TtlCache<std::string, std::string> configs_elsewhere({.name = "configs"});
  auto shared = tier->attach(configs);
  auto shared_elsewhere = other->attach(configs_elsewhere);
  poolscope::testing::wait_subscribed(*tier);

  MetricsCollector metrics;
  metrics.add_redis_tier(*tier, "app");
  metrics.add_redis_tier(*tier, "app");  // again: nothing changes
  const std::string before = metrics.text();
  const std::string p = "prefix=\"" + prefix + "\"";
  EXPECT_EQ(sample(before, "poolscope_redis_state", {p, "state=\"up\""}), 1) << before;
  EXPECT_EQ(sample(before, "poolscope_redis_state", {p, "state=\"backing_off\""}), 0);
  EXPECT_EQ(sample(before, "poolscope_redis_subscriber_connected", {p, "pool=\"app\""}), 1);
  EXPECT_EQ(sample(before, "poolscope_redis_requests_total",
                   {p, "cache=\"configs\"", "tier=\"redis\"", "result=\"hit\""}),
            0)
      << "a cache's series exist at zero once attached";

  int loads = 0;
  const auto load = [&](const std::string& key) {
    ++loads;
    return "value of " + key;
  };
  EXPECT_EQ(shared.get_or_load("k", load), "value of k");            // loads, stores
  EXPECT_EQ(shared_elsewhere.get_or_load("k", load), "value of k");  // a Redis hit
  EXPECT_EQ(shared.get_or_load("k", load), "value of k");            // a local hit
  EXPECT_EQ(loads, 1);
  configs.erase("k");  // published to the other tier

  const std::string after = metrics.text();
  EXPECT_EQ(sample(after, "poolscope_redis_requests_total",
                   {p, "cache=\"configs\"", "tier=\"local\"", "result=\"hit\""}),
            1)
      << after;
  EXPECT_EQ(sample(after, "poolscope_redis_requests_total",
                   {p, "cache=\"configs\"", "tier=\"local\"", "result=\"miss\""}),
            1);
  EXPECT_EQ(sample(after, "poolscope_redis_requests_total",
                   {p, "cache=\"configs\"", "tier=\"redis\"", "result=\"miss\""}),
            1);
  EXPECT_EQ(sample(after, "poolscope_redis_loads_total", {p, "cache=\"configs\""}), 1);
  EXPECT_EQ(sample(after, "poolscope_redis_stores_total", {p, "cache=\"configs\""}), 1);
  EXPECT_EQ(sample(after, "poolscope_redis_lock_total", {p, "outcome=\"acquired\""}), 1);
  EXPECT_EQ(sample(after, "poolscope_redis_invalidations_total", {p, "direction=\"published\""}),
            1);
  EXPECT_GT(sample(after, "poolscope_redis_calls_total", {p}), 2);
  EXPECT_GT(sample(after, "poolscope_redis_call_seconds_count", {p}), 2);
  EXPECT_EQ(sample(after, "poolscope_redis_call_seconds_bucket", {p, "le=\"+Inf\""}),
            sample(after, "poolscope_redis_call_seconds_count", {p}));
  EXPECT_EQ(sample(after, "poolscope_redis_errors_total", {p, "kind=\"timeout\""}), 0);
  // The other process's tier (not added) received the erase.
  EXPECT_TRUE(
      poolscope::testing::eventually([&] { return other->stats().invalidations_received == 1; }));

  const std::string password = fixture_redis().password;
  EXPECT_EQ(after.find(password), std::string::npos);
  const std::string json_text = metrics.json();
  EXPECT_EQ(json_text.find(password), std::string::npos) << json_text;
  const nlohmann::json json = nlohmann::json::parse(json_text);
  ASSERT_EQ(json["redis_tiers"].size(), 1u) << json_text;
  const nlohmann::json& t = json["redis_tiers"][0];
  EXPECT_EQ(t["prefix"], prefix);
  EXPECT_EQ(t["pool"], "app");
  EXPECT_NE(t["url"].get<std::string>().find(":***@"), std::string::npos);
  EXPECT_EQ(t["state"], "up");
  EXPECT_EQ(t["caches"][0]["cache"], "configs");
  EXPECT_EQ(t["caches"][0]["loads"], 1);

  // Another tier of the same prefix and pool is a mistake; another pool is not.
  EXPECT_THROW(metrics.add_redis_tier(*other, "app"), std::invalid_argument);
  metrics.add_redis_tier(*other, "elsewhere");
  metrics.remove_redis_tier(*other);
  EXPECT_EQ(sample(metrics.text(), "poolscope_redis_state", {"pool=\"elsewhere\""}), -1);
}

TEST(RedisTierMetricsTest, ATierThatCannotReachRedisCountsItsErrorsAndBacksOff) {
  // Port 1 on loopback refuses: the tier works on, without Redis.
  const auto tier = std::make_unique<RedisTier>(
      RedisTierConfig{.url = "redis://:not-this-one@127.0.0.1:1/0", .prefix = unique_prefix()});
  TtlCache<std::string, int> numbers({.name = "numbers"});
  auto shared = tier->attach(numbers);
  MetricsCollector metrics;
  metrics.add_redis_tier(*tier);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(shared.get_or_load("k" + std::to_string(i), [](const std::string&) { return 7; }), 7);
  }
  // The subscriber's attempts fail (reads skip Redis while it is out).
  ASSERT_TRUE(poolscope::testing::eventually(
      [&] { return tier->stats().state == cache::RedisTierState::kBackingOff; }));
  const std::string text = metrics.text();
  EXPECT_GE(sample(text, "poolscope_redis_errors_total", {"kind=\"error\""}), 3) << text;
  EXPECT_GE(sample(text, "poolscope_redis_breaker_total", {"change=\"opened\""}), 1) << text;
  EXPECT_EQ(sample(text, "poolscope_redis_state", {"state=\"up\""}), 0) << text;
  EXPECT_EQ(sample(text, "poolscope_redis_loads_total", {"cache=\"numbers\""}), 5) << text;
  EXPECT_GE(sample(text, "poolscope_redis_fallback_loads_total", {"cache=\"numbers\""}), 1) << text;
  EXPECT_EQ(text.find("not-this-one"), std::string::npos);
  EXPECT_EQ(metrics.json().find("not-this-one"), std::string::npos);
}

// The tier (with its cache) destroyed first, then the collector, and the
// other way round, while a thread scrapes text() and json() in a loop.
TEST(RedisTierMetricsTest, EitherMayBeDestroyedFirstWhileAnotherThreadScrapes) {
  for (const bool tier_first : {true, false}) {
    for (int round = 0; round < 5; ++round) {
      auto tier = make_tier(unique_prefix());
      auto cache =
          std::make_unique<TtlCache<std::string, std::string>>(cache::TtlCacheConfig{.name = "c"});
      auto binding =
          std::make_unique<cache::RedisBinding<std::string, std::string>>(tier->attach(*cache));
      binding->get_or_load("k", [](const std::string&) { return std::string("v"); });
      auto metrics = std::make_shared<MetricsCollector>();
      metrics->add_redis_tier(*tier, "p");
      std::atomic<bool> stop{false};
      std::atomic<int> scrapes{0}, without_tier{0};
      std::thread scraper([metrics, &stop, &scrapes, &without_tier] {
        while (!stop.load()) {
          const std::string text = metrics->text();
          (void)metrics->json();
          if (text.find("poolscope_redis_state") == std::string::npos) ++without_tier;
          ++scrapes;
        }
      });
      ASSERT_TRUE(poolscope::testing::eventually([&] { return scrapes.load() > 3; }));
      if (tier_first) {
        binding.reset();
        tier.reset();  // while the scraper may be reading it
        cache.reset();
        const int seen = scrapes.load();
        ASSERT_TRUE(poolscope::testing::eventually([&] { return scrapes.load() > seen + 2; }));
        EXPECT_GT(without_tier.load(), 0) << "the tier left the scrape";
        EXPECT_EQ(metrics->text().find("poolscope_redis_"), std::string::npos);
        stop = true;
        scraper.join();
        metrics.reset();
      } else {
        stop = true;
        scraper.join();
        metrics.reset();  // the collector first: the tier goes on, unread
        EXPECT_EQ(binding->get_or_load("k", [](const std::string&) { return std::string("x"); }),
                  "v");
        binding.reset();
        tier.reset();
      }
    }
  }
}

}  // namespace
}  // namespace poolscope::exporters
