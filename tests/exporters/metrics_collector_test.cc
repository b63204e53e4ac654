#include "poolscope/exporters/metrics_collector.h"

#include <gtest/gtest.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

#include "capturing_sink.h"
#include "exposition.h"
#include "poolscope/base/site.h"
#include "test_db.h"
#include "test_util.h"

namespace poolscope::exporters {
namespace {

using namespace std::chrono_literals;
using poolscope::testing::parse_samples;
using poolscope::testing::TestBackend;
using poolscope::testing::TestDatabase;

class MetricsCollectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::tie(logger_, sink_) = poolscope::testing::CapturingSink::logger("metrics");
  }

  PoolConfig config(const std::string& name, std::size_t size = 2, std::size_t overflow = 1) {
    PoolConfig c = db_.config(size, overflow);
    c.name = name;
    return c;
  }
  tracing::TracerConfig tracer_config() {
    tracing::TracerConfig c;
    c.logger = logger_;
    return c;
  }

  TestDatabase db_{TestBackend::kSqlite};
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<poolscope::testing::CapturingSink> sink_;
};

TEST_F(MetricsCollectorTest, ASiteCountsACheckoutWhenItsLeaseComesBack) {
  Pool pool(config("returned"));
  tracing::Tracer tracer(pool, tracer_config());
  MetricsCollector metrics;
  metrics.add_pool(pool);
  metrics.add_tracer(tracer);
  const std::source_location site = std::source_location::current();
  const std::string series =
      "poolscope_site_acquires_total{pool=\"returned\",site=\"" + format_site(site) + "\"}";
  { Lease lease = pool.acquire(site); }
  Lease held = pool.acquire(site);
  EXPECT_EQ(parse_samples(metrics.text()).at(series), 1)
      << "the lease still out is not counted yet";
  held.release();
  EXPECT_EQ(parse_samples(metrics.text()).at(series), 2);
  // The JSON's site table reads the same registry: a checkout counts when
  // its lease comes back, while the pool's own figures count it at once.
  Lease again = pool.acquire(site);
  const nlohmann::json j = nlohmann::json::parse(metrics.json());
  EXPECT_EQ(j["sites"][0]["sites"][0]["acquires"], 2);
  EXPECT_EQ(j["pools"][0]["acquires"], 3);
}

TEST_F(MetricsCollectorTest, CountersNeverGoDownWhileLeasesComeAndGo) {
  Pool pool(config("busy", 2, 2));
  tracing::Tracer tracer(pool, tracer_config());
  MetricsCollector metrics;
  metrics.add_pool(pool);
  metrics.add_tracer(tracer);
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      while (!stop.load()) {
        Lease lease = pool.acquire();
        Lease nested = pool.acquire();
      }
    });
  }
  std::map<std::string, double> last;
  std::vector<std::string> decreases;
  for (int scrape = 0; scrape < 300 && decreases.empty(); ++scrape) {
    for (const auto& [series, value] : parse_samples(metrics.text())) {
      const std::string name = series.substr(0, series.find('{'));
      const bool counter =
          name.ends_with("_total") || name.ends_with("_count") || name.ends_with("_sum");
      if (!counter) continue;
      if (auto it = last.find(series); it != last.end() && value < it->second) {
        decreases.push_back(series + ": " + std::to_string(it->second) + " -> " +
                            std::to_string(value));
      }
      last[series] = value;
    }
  }
  stop = true;
  for (std::thread& t : threads) t.join();
  EXPECT_TRUE(decreases.empty()) << ::testing::PrintToString(decreases);
  EXPECT_GT(last.at("poolscope_connections_usage_seconds_count{pool=\"busy\"}"), 0)
      << "the threads did work";
}

TEST_F(MetricsCollectorTest, ACacheWhoseStatsThrowIsLeftOutOfTheScrape) {
  Pool pool(config("steady"));
  MetricsCollector metrics;
  metrics.add_pool(pool);
  metrics.add_cache(CacheHandle{.name = "broken", .stats = []() -> cache::CacheStats {
                                  throw std::runtime_error("stats unavailable");
                                }});
  metrics.add_cache(
      CacheHandle{.name = "thrower", .stats = []() -> cache::CacheStats { throw 42; }});
  std::vector<prometheus::MetricFamily> families;
  ASSERT_NO_THROW(families = metrics.Collect());
  const auto s = parse_samples(metrics.text());
  EXPECT_EQ(s.at("poolscope_connections_max{pool=\"steady\"}"), 3)
      << "the other components are there";
  for (const auto& [series, value] : s)
    EXPECT_EQ(series.find("cache=\"broken\""), std::string::npos) << series;
  nlohmann::json j;
  ASSERT_NO_THROW(j = nlohmann::json::parse(metrics.json()));
  EXPECT_EQ(j["pools"][0]["name"], "steady");
  EXPECT_EQ(j["caches"].size(), 0u);
  EXPECT_EQ(j["errors"], nlohmann::json::array({"cache broken: stats unavailable",
                                                "cache thrower: unknown exception"}));
}

TEST_F(MetricsCollectorTest, TheJsonCarriesNamesThatAreNotUtf8) {
  MetricsCollector metrics;
  metrics.add_cache(
      CacheHandle{.name = "bad\xff-name", .stats = [] { return cache::CacheStats{}; }});
  std::string text;
  ASSERT_NO_THROW(text = metrics.json());
  const nlohmann::json j = nlohmann::json::parse(text);
  EXPECT_EQ(j["caches"][0]["name"], "bad\xEF\xBF\xBD-name") << "replaced by U+FFFD";
}

TEST_F(MetricsCollectorTest, EverySeriesExistsFromTheStartAtZero) {
  Pool pool(config("fresh"));
  cache::TtlCache<std::string, int> configs({.name = "configs"});
  MetricsCollector metrics;
  metrics.add_pool(pool);
  metrics.add_cache(configs, "fresh");
  const auto s = parse_samples(metrics.text());
  for (const char* state : {"active", "idle"}) {
    EXPECT_EQ(s.at(std::string("poolscope_connections{pool=\"fresh\",state=\"") + state + "\"}"),
              0);
  }
  EXPECT_EQ(s.at("poolscope_connections_pending{pool=\"fresh\"}"), 0);
  EXPECT_EQ(s.at("poolscope_connections_pending_oldest_wait_seconds{pool=\"fresh\"}"), 0);
  EXPECT_EQ(s.at("poolscope_connections_waits_total{pool=\"fresh\"}"), 0);
  for (const char* reason :
       {"max_lifetime", "idle_timeout", "broken", "validation_failed", "overflow", "shutdown"}) {
    EXPECT_EQ(s.at(std::string("poolscope_connections_closed_total{pool=\"fresh\",reason=\"") +
                   reason + "\"}"),
              0);
  }
  for (const char* phase : {"connect", "validation", "checkin"}) {
    EXPECT_EQ(s.at(std::string("poolscope_connection_errors_total{pool=\"fresh\",phase=\"") +
                   phase + "\"}"),
              0)
        << phase;
  }
  EXPECT_EQ(s.at("poolscope_connections_max{pool=\"fresh\"}"), 3);
  EXPECT_EQ(s.at("poolscope_connections_timeout_total{pool=\"fresh\"}"), 0);
  EXPECT_EQ(s.at("poolscope_connections_acquire_seconds_count{pool=\"fresh\"}"), 0);
  EXPECT_EQ(s.at("poolscope_connections_leaked_total{pool=\"fresh\"}"), 0);
  EXPECT_EQ(s.at("poolscope_cache_requests_total{cache=\"configs\",pool=\"fresh\",result=\"hit\"}"),
            0);
  EXPECT_EQ(
      s.at("poolscope_cache_requests_total{cache=\"configs\",pool=\"fresh\",result=\"miss\"}"), 0);
  for (const char* reason : {"capacity", "ttl", "invalidated"}) {
    EXPECT_EQ(
        s.at(std::string(
                 "poolscope_cache_evictions_total{cache=\"configs\",pool=\"fresh\",reason=\"") +
             reason + "\"}"),
        0);
  }
  EXPECT_EQ(s.at("poolscope_build_info{version=\"" POOLSCOPE_VERSION "\"}"), 1);
}

TEST_F(MetricsCollectorTest, CountsMatchThePoolsOwnStatistics) {
  Pool pool(config("counted"));
  MetricsCollector metrics;
  metrics.add_pool(pool);
  {
    Lease a = pool.acquire();
    Lease nested = pool.acquire();
    Lease b = pool.acquire_new();
    Lease c = pool.acquire_new();  // overflow
  }
  for (int i = 0; i < 5; ++i) Lease again = pool.acquire();
  const PoolStats stats = pool.stats();
  const auto s = parse_samples(metrics.text());
  EXPECT_EQ(s.at("poolscope_connections_acquire_seconds_count{pool=\"counted\"}"), stats.acquires);
  EXPECT_EQ(s.at("poolscope_connections_usage_seconds_count{pool=\"counted\"}"), stats.acquires);
  EXPECT_EQ(s.at("poolscope_connections_creation_seconds_count{pool=\"counted\"}"),
            stats.connections_opened);
  EXPECT_EQ(s.at("poolscope_connections_reuses_total{pool=\"counted\"}"), 1);
  EXPECT_EQ(s.at("poolscope_connections_closed_total{pool=\"counted\",reason=\"overflow\"}"), 1);
  EXPECT_EQ(s.at("poolscope_connections{pool=\"counted\",state=\"idle\"}"), stats.idle);
  EXPECT_GT(s.at("poolscope_connections_creation_seconds_sum{pool=\"counted\"}"), 0);
}

TEST_F(MetricsCollectorTest, PreparedStatementsAreCountedAsThePoolCountsThem) {
  Pool pool(config("prepared"));
  MetricsCollector metrics;
  metrics.add_pool(pool);
  for (int i = 0; i < 3; ++i) {
    Lease lease = pool.acquire();
    int one = 0;
    lease.prepared("SELECT 1").execute(soci::into(one));
  }
  const auto s = parse_samples(metrics.text());
  EXPECT_EQ(s.at("poolscope_statements_prepared_total{pool=\"prepared\"}"), 1);
  EXPECT_EQ(s.at("poolscope_statement_cache_hits_total{pool=\"prepared\"}"), 2);
  const nlohmann::json j = nlohmann::json::parse(metrics.json());
  EXPECT_EQ(j["pools"][0]["statement_cache_hits"], 2);
}

TEST_F(MetricsCollectorTest, SitesAreLabelledByPoolAndSite) {
  Pool pool(config("sited"));
  tracing::Tracer tracer(pool, tracer_config());
  MetricsCollector metrics;
  metrics.add_pool(pool);
  metrics.add_tracer(tracer);
  const std::source_location site = std::source_location::current();
  for (int i = 0; i < 3; ++i) Lease lease = pool.acquire(site);
  const auto s = parse_samples(metrics.text());
  const std::string labels = "{pool=\"sited\",site=\"" + format_site(site) + "\"}";
  EXPECT_EQ(s.at("poolscope_site_acquires_total" + labels), 3);
  EXPECT_GE(s.at("poolscope_site_usage_seconds_total" + labels), 0);
  EXPECT_EQ(s.at("poolscope_site_leaks_total{pool=\"sited\",site=\"other\"}"), 0);
  EXPECT_EQ(s.at("poolscope_sites_folded{pool=\"sited\"}"), 0);
}

TEST_F(MetricsCollectorTest, TheExpositionPassesPromtool) {
  Pool pool(config("linted"));
  tracing::Tracer tracer(pool, tracer_config());
  cache::InstanceCache<int, std::string> names(
      [](const int& id) { return std::make_shared<std::string>(std::to_string(id)); },
      {.name = "names"});
  MetricsCollector metrics;
  metrics.add_pool(pool);
  metrics.add_tracer(tracer);
  metrics.add_cache(names, "linted");
  for (int i = 0; i < 4; ++i) {
    Lease lease = pool.acquire();
    names.get(i % 2);
  }
  const auto file = std::filesystem::temp_directory_path() /
                    ("poolscope-exposition-" + std::to_string(::getpid()));
  std::ofstream(file) << metrics.text();
  const auto [status, output] =
      poolscope::testing::run_command("promtool check metrics < " + file.string());
  std::filesystem::remove(file);
  EXPECT_EQ(status, 0) << output;
  EXPECT_EQ(output, "") << "promtool's lint found problems";
}

TEST_F(MetricsCollectorTest, APoolDestroyedFirstTakesItsSeriesWithIt) {
  MetricsCollector metrics;
  auto pool = std::make_unique<Pool>(config("short-lived"));
  metrics.add_pool(*pool);
  { Lease lease = pool->acquire(); }
  EXPECT_NE(metrics.text().find("pool=\"short-lived\""), std::string::npos);
  pool.reset();
  EXPECT_EQ(metrics.text().find("pool=\"short-lived\""), std::string::npos);
  EXPECT_NE(metrics.text().find("poolscope_build_info"), std::string::npos);
}

TEST_F(MetricsCollectorTest, ACollectorDestroyedFirstLeavesThePoolWorking) {
  Pool pool(config("outlives"));
  {
    MetricsCollector metrics;
    metrics.add_pool(pool);
  }
  Lease lease = pool.acquire();
  *lease << "SELECT 1";
}

TEST_F(MetricsCollectorTest, TheJsonSnapshotHasPoolsSitesAndCaches) {
  Pool pool(config("snapshot"));
  tracing::Tracer tracer(pool, tracer_config());
  cache::TtlCache<std::string, int> configs({.name = "configs"});
  MetricsCollector metrics;
  metrics.add_pool(pool);
  metrics.add_tracer(tracer);
  metrics.add_cache(configs);
  { Lease lease = pool.acquire(); }
  configs.get_or_load("a", [](const std::string&) { return 1; });
  configs.get(std::string("a"));
  const nlohmann::json j = nlohmann::json::parse(metrics.json());
  EXPECT_EQ(j["pools"][0]["name"], "snapshot");
  EXPECT_EQ(j["pools"][0]["acquires"], 1);
  EXPECT_EQ(j["pools"][0]["closed"]["broken"], 0);
  EXPECT_EQ(j["sites"][0]["pool"], "snapshot");
  EXPECT_EQ(j["sites"][0]["sites"][0]["acquires"], 1);
  EXPECT_EQ(j["caches"][0]["name"], "configs");
  EXPECT_EQ(j["caches"][0]["hits"], 1);
  EXPECT_EQ(j["caches"][0]["loads"], 1);
}

TEST_F(MetricsCollectorTest, TextCombinesWithTheHostsOwnRegistry) {
  Pool pool(config("hosted"));
  auto metrics = std::make_shared<MetricsCollector>();
  metrics->add_pool(pool);
  prometheus::Registry host;
  prometheus::BuildCounter()
      .Name("app_requests_total")
      .Help("Requests.")
      .Register(host)
      .Add({})
      .Increment(3);
  const std::string text = render_text({&host, metrics.get()});
  EXPECT_NE(text.find("app_requests_total 3"), std::string::npos);
  EXPECT_NE(text.find("poolscope_connections_max{pool=\"hosted\"} 3"), std::string::npos);
}

TEST_F(MetricsCollectorTest, AddingTwiceUnderOneNameIsRefused) {
  Pool a(config("same")), b(config("same"));
  MetricsCollector metrics;
  metrics.add_pool(a);
  EXPECT_THROW(metrics.add_pool(b), std::invalid_argument);
  cache::TtlCache<int, int> c1({.name = "dup"}), c2({.name = "dup"});
  metrics.add_cache(c1);
  EXPECT_THROW(metrics.add_cache(c2), std::invalid_argument);
}

TEST_F(MetricsCollectorTest, AdminActionsClearAndInvalidateByName) {
  cache::TtlCache<std::string, int> configs({.name = "configs"});
  cache::TtlCache<int, int> numbers({.name = "numbers"});
  MetricsCollector metrics;
  metrics.add_cache(configs);
  metrics.add_cache(numbers);
  for (const char* key : {"pair:ETH", "pair:BTC", "risk:ETH"}) configs.put(key, 1);
  for (int i : {1, 12, 13, 2}) numbers.put(i, i);
  EXPECT_EQ(metrics.invalidate_cache("configs", "pair:*"), 2u);
  EXPECT_EQ(metrics.invalidate_cache("numbers", "1?"), 2u);
  EXPECT_EQ(numbers.stats().entries, 2u);
  EXPECT_TRUE(metrics.clear_cache("configs"));
  EXPECT_EQ(configs.stats().entries, 0u);
  EXPECT_FALSE(metrics.clear_cache("nope"));
  EXPECT_EQ(metrics.invalidate_cache("nope", "*"), std::nullopt);
  EXPECT_EQ(metrics.cache_names(), (std::vector<std::string>{"configs", "numbers"}));
}

TEST(MetricsCollectorPostgreSQLTest, NoPasswordInTheExpositionOrTheJson) {
  TestDatabase db(TestBackend::kPostgreSQL);
  PoolConfig c = db.config(2);
  c.name = "secret";
  Pool pool(c);
  tracing::TracerConfig tc;
  tc.logger = poolscope::testing::CapturingSink::logger("pg").first;
  tracing::Tracer tracer(pool, tc);
  MetricsCollector metrics;
  metrics.add_pool(pool);
  metrics.add_tracer(tracer);
  { Lease lease = pool.acquire(); }
  const std::string& password = poolscope::testing::pg_server().password;
  EXPECT_EQ(metrics.text().find(password), std::string::npos);
  const std::string json = metrics.json();
  EXPECT_EQ(json.find(password), std::string::npos);
  EXPECT_NE(json.find(":***@"), std::string::npos) << "the URL appears redacted";
}

}  // namespace
}  // namespace poolscope::exporters
