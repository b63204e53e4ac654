// Teardown in any order while scrapes run: a pool (with the SettingsCache
// that needs it), a tracer, caches, the collector and a MetricsServer are
// destroyed in every one of the 120 orders, while a host's prometheus-cpp
// Exposer, the MetricsServer and a host thread calling text() and json()
// scrape in loops on their own threads. Run it under AddressSanitizer and
// ThreadSanitizer (scripts/sanitize.sh): a read of a destroyed component is
// a report there, and a crash or a failed scrape anywhere.

#include <gtest/gtest.h>
#include <prometheus/exposer.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <thread>

#include "capturing_sink.h"
#include "exposition.h"
#include "poolscope/exporters/metrics_server.h"
#include "raw_http.h"
#include "test_db.h"
#include "test_util.h"

namespace poolscope::exporters {
namespace {

using namespace std::chrono_literals;
using poolscope::testing::parse_samples;
using poolscope::testing::raw_request;

enum Unit { kPool, kTracer, kCaches, kCollector, kServer, kUnits };
constexpr std::array<const char*, kUnits> kUnitNames = {"pool", "tracer", "caches", "collector",
                                                        "server"};

// A thread that GETs /metrics on a port in a loop; every scrape must get a
// 200.
class Scraper {
 public:
  explicit Scraper(int port = 0) : port_(port) {
    thread_ = std::jthread([this](std::stop_token stop) { run(stop); });
  }

  // Points the scraper at another server (0: none), and waits for a scrape
  // of the old one in progress: call it before destroying the server. (A
  // connection civetweb accepts just as it stops is never answered, and a
  // scrape of a server going away is not what this test is about.)
  void retarget(int port) {
    const int old = port_.exchange(port);
    while (old != 0 && in_flight_.load() == old) std::this_thread::sleep_for(100us);
  }
  std::uint64_t completed() const { return completed_.load(); }
  bool active() const { return port_.load() != 0; }
  std::vector<std::string> failures() const {
    std::lock_guard lock(mu_);
    return failures_;
  }

 private:
  void run(std::stop_token stop) {
    while (!stop.stop_requested()) {
      // Announced before it is checked again: retarget() either sees it and
      // waits, or the check sees the new port (all seq_cst).
      const int port = port_.load();
      in_flight_.store(port);
      if (port == 0 || port_.load() != port) {
        in_flight_.store(0);
        std::this_thread::sleep_for(1ms);
        continue;
      }
      const auto r = raw_request("127.0.0.1", port, "GET", "/metrics", {}, 10s);
      in_flight_.store(0);
      if (r.status != 200) {
        std::lock_guard lock(mu_);
        failures_.push_back(std::to_string(r.status) + " " + r.error + r.body.substr(0, 200));
      }
      completed_.fetch_add(1);
    }
  }

  std::atomic<int> port_;
  std::atomic<int> in_flight_{0};
  std::atomic<std::uint64_t> completed_{0};
  mutable std::mutex mu_;
  std::vector<std::string> failures_;
  std::jthread thread_;  // last: stops before the members it reads go
};

// A host thread that renders the collector it can still reach.
class HostReader {
 public:
  HostReader() {
    thread_ = std::jthread([this](std::stop_token stop) {
      while (!stop.stop_requested()) {
        std::shared_ptr<MetricsCollector> c;
        {
          std::lock_guard lock(mu_);
          c = collector_.lock();
        }
        if (c != nullptr) {
          const std::string text = c->text() + c->json();
          if (text.find("poolscope_build_info") == std::string::npos) bad_.fetch_add(1);
        } else {
          std::this_thread::sleep_for(1ms);
        }
        c.reset();  // perhaps the last reference: the collector goes on this thread
        completed_.fetch_add(1);
      }
    });
  }
  void watch(std::weak_ptr<MetricsCollector> c) {
    std::lock_guard lock(mu_);
    collector_ = std::move(c);
  }
  std::uint64_t completed() const { return completed_.load(); }
  std::uint64_t bad() const { return bad_.load(); }

 private:
  std::mutex mu_;
  std::weak_ptr<MetricsCollector> collector_;
  std::atomic<std::uint64_t> completed_{0};
  std::atomic<std::uint64_t> bad_{0};
  std::jthread thread_;
};

// What a host holds, each in an optional so it can go in any order.
struct Components {
  std::optional<Pool> pool;
  std::optional<cache::SettingsCache> settings;  // needs pool: goes with it, first
  std::optional<tracing::Tracer> tracer;
  std::optional<cache::TtlCache<std::string, int>> configs;
  std::optional<cache::InstanceCache<int, std::string>> accounts;
  std::shared_ptr<MetricsCollector> collector;
  std::optional<MetricsServer> server;
  std::array<bool, kUnits> gone{};
};

class MetricsCollectorLifetimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto sql = db_.open_session();
    *sql << "CREATE TABLE settings (entity_id INTEGER, setting_key TEXT, setting_value TEXT, "
            "PRIMARY KEY (entity_id, setting_key))";
    *sql << "INSERT INTO settings VALUES (1, 'api_key', 'k1')";
  }

  static std::shared_ptr<prometheus::Registry> registered(prometheus::Exposer& exposer) {
    auto registry = std::make_shared<prometheus::Registry>();
    exposer.RegisterCollectable(registry);
    return registry;
  }

  void build(Components& c) {
    PoolConfig pc = db_.config(2, 1);
    pc.name = "torn";
    c.pool.emplace(pc);
    c.settings.emplace(*c.pool, cache::SettingsCacheConfig{.name = "settings"});
    tracing::TracerConfig tc;
    tc.logger = logger_;
    c.tracer.emplace(*c.pool, tc);
    c.configs.emplace(cache::TtlCacheConfig{.name = "configs"});
    c.accounts.emplace(
        [](const int& id) { return std::make_shared<std::string>(std::to_string(id)); },
        cache::InstanceCacheConfig{.name = "accounts"});
    c.collector = std::make_shared<MetricsCollector>();
    c.collector->add_pool(*c.pool);
    c.collector->add_tracer(*c.tracer);
    c.collector->add_cache(*c.settings);
    c.collector->add_cache(*c.configs);
    c.collector->add_cache(*c.accounts, "torn");
    exposer_.RegisterCollectable(c.collector);
    c.server.emplace(c.collector, MetricsServerConfig{.listen = "127.0.0.1:0", .threads = 4});
    served_.retarget(c.server->port());
    host_.watch(c.collector);
    // Work, so every family has samples.
    for (int i = 0; i < 3; ++i) {
      Lease lease = c.pool->acquire();
      *lease << "SELECT 1";
    }
    EXPECT_EQ(c.settings->get<std::string>(1, "api_key"), "k1");
    c.configs->put("pair:ETH", 1);
    c.accounts->get(7);
  }

  void destroy(Components& c, Unit unit) {
    switch (unit) {
      case kPool:
        c.settings.reset();
        c.pool.reset();
        break;
      case kTracer:
        c.tracer.reset();
        break;
      case kCaches:
        c.accounts.reset();
        c.configs.reset();
        break;
      case kCollector:
        c.collector.reset();  // the server, the Exposer's scrape or the host may hold it still
        break;
      case kServer:
        served_.retarget(0);
        c.server.reset();
        break;
      default:
        break;
    }
    c.gone[unit] = true;
  }

  // Until every scraper has finished a scrape that started after now.
  void wait_for_scrapes() {
    const std::uint64_t exposed = exposed_.completed(), served = served_.completed(),
                        host = host_.completed();
    const bool serving = served_.active();
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (exposed_.completed() < exposed + 2 || (serving && served_.completed() < served + 2) ||
           host_.completed() < host + 2) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "a scraper stopped scraping";
      std::this_thread::sleep_for(1ms);
    }
  }

  // What the host's Exposer serves now must match what is still alive.
  void check_exposition(const Components& c, const std::string& order) {
    const auto r = raw_request("127.0.0.1", exposer_port_, "GET", "/metrics");
    ASSERT_EQ(r.status, 200) << order << ": " << r.error;
    const bool collecting = !c.gone[kCollector] || !c.gone[kServer];
    const auto has = [&](const std::string& s) { return r.body.find(s) != std::string::npos; };
    EXPECT_EQ(has("poolscope_connections_max{pool=\"torn\"}"), collecting && !c.gone[kPool])
        << order;
    EXPECT_EQ(has("poolscope_site_acquires_total{pool=\"torn\""),
              collecting && !c.gone[kPool] && !c.gone[kTracer])
        << order;
    EXPECT_EQ(has("cache=\"configs\""), collecting && !c.gone[kCaches]) << order;
    EXPECT_EQ(has("cache=\"settings\""), collecting && !c.gone[kPool]) << order;
  }

  poolscope::testing::TestDatabase db_{poolscope::testing::TestBackend::kSqlite};
  std::shared_ptr<spdlog::logger> logger_ = poolscope::testing::CapturingSink::logger("torn").first;
  prometheus::Exposer exposer_{"127.0.0.1:0"};
  // The host's own metrics, registered before anyone scrapes (an Exposer
  // without a collectable has no /metrics: 404).
  std::shared_ptr<prometheus::Registry> host_registry_ = registered(exposer_);
  int exposer_port_ = exposer_.GetListeningPorts().front();
  Scraper exposed_{exposer_port_};
  Scraper served_;
  HostReader host_;
};

// One component destroyed before the collector, without a scrape running:
// what the next scrape shows, and that the name may be used again.
class MetricsCollectorTeardownTest : public ::testing::Test {
 protected:
  PoolConfig config(const std::string& name) {
    PoolConfig c = db_.config(2, 1);
    c.name = name;
    return c;
  }
  tracing::TracerConfig tracer_config() {
    tracing::TracerConfig c;
    c.logger = poolscope::testing::CapturingSink::logger("teardown").first;
    return c;
  }

  poolscope::testing::TestDatabase db_{poolscope::testing::TestBackend::kSqlite};
};

TEST_F(MetricsCollectorTeardownTest, ACacheDestroyedFirstLeavesTheScrapeAndItsNameMayComeBack) {
  MetricsCollector metrics;
  auto configs =
      std::make_unique<cache::TtlCache<std::string, int>>(cache::TtlCacheConfig{.name = "configs"});
  metrics.add_cache(*configs);
  configs->put("a", 1);
  EXPECT_NE(metrics.text().find("cache=\"configs\""), std::string::npos);
  configs.reset();  // before the collector, which reads it no more
  EXPECT_EQ(metrics.text().find("cache=\"configs\""), std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(metrics.json())["caches"].size(), 0u);
  EXPECT_FALSE(metrics.clear_cache("configs"));
  EXPECT_EQ(metrics.invalidate_cache("configs", "*"), std::nullopt);
  EXPECT_TRUE(metrics.cache_names().empty());
  cache::TtlCache<std::string, int> again({.name = "configs"});
  EXPECT_NO_THROW(metrics.add_cache(again)) << "the name is free again";
  EXPECT_NE(metrics.text().find("cache=\"configs\""), std::string::npos);
}

TEST_F(MetricsCollectorTeardownTest, ATracerDestroyedFirstLeavesTheScrape) {
  Pool pool(config("traced"));
  MetricsCollector metrics;
  metrics.add_pool(pool);
  auto tracer = std::make_unique<tracing::Tracer>(pool, tracer_config());
  metrics.add_tracer(*tracer);
  { Lease lease = pool.acquire(); }
  EXPECT_NE(metrics.text().find("poolscope_site_acquires_total{pool=\"traced\""),
            std::string::npos);
  tracer.reset();
  const std::string text = metrics.text();
  EXPECT_EQ(text.find("poolscope_site_acquires_total"), std::string::npos);
  EXPECT_NE(text.find("poolscope_connections_max{pool=\"traced\"}"), std::string::npos);
  tracing::Tracer second(pool, tracer_config());
  metrics.add_tracer(second);  // perhaps at the first one's address: a new tracer all the same
  { Lease lease = pool.acquire(); }
  EXPECT_NE(metrics.text().find("poolscope_site_acquires_total{pool=\"traced\""),
            std::string::npos);
}

TEST_F(MetricsCollectorTeardownTest, APoolMayBeAddedAgainUnderTheNameOfOneDestroyed) {
  MetricsCollector metrics;
  auto first = std::make_unique<Pool>(config("renewed"));
  metrics.add_pool(*first);
  first.reset();
  Pool second(config("renewed"));
  EXPECT_NO_THROW(metrics.add_pool(second));
  { Lease lease = second.acquire(); }
  EXPECT_EQ(parse_samples(metrics.text())
                .at("poolscope_connections_acquire_seconds_count{pool=\"renewed\"}"),
            1);
}

TEST_F(MetricsCollectorLifetimeTest, AnyDestructionOrderIsSafeWhileScrapesRun) {
  std::array<int, kUnits> order;
  std::iota(order.begin(), order.end(), 0);
  int orders = 0;
  do {
    std::string name;
    for (int u : order) name += std::string(name.empty() ? "" : " ") + kUnitNames[u];
    SCOPED_TRACE(name);
    Components c;
    build(c);
    wait_for_scrapes();
    check_exposition(c, name);
    std::weak_ptr<MetricsCollector> collector = c.collector;
    for (int u : order) {
      destroy(c, static_cast<Unit>(u));
      if (c.gone[kCollector] && c.gone[kServer]) {
        // The collector goes once nothing holds it, perhaps on a scraping thread.
        ASSERT_TRUE(poolscope::testing::eventually([&] { return collector.expired(); })) << name;
      }
      wait_for_scrapes();
      check_exposition(c, name);
    }

    exposer_.RemoveCollectable(collector);
    ++orders;
    if (HasFatalFailure()) return;
  } while (std::next_permutation(order.begin(), order.end()));
  EXPECT_EQ(orders, 120);
  EXPECT_EQ(exposed_.failures(), std::vector<std::string>{});
  EXPECT_EQ(served_.failures(), std::vector<std::string>{});
  EXPECT_EQ(host_.bad(), 0u);
  EXPECT_GT(exposed_.completed(), 1000u) << "the scrapes ran throughout";
}

}  // namespace
}  // namespace poolscope::exporters
