// What a user of poolscope::tracing observes: the log lines and the site table.

#include "poolscope/tracing/tracer.h"

#include <gtest/gtest.h>
#include <soci/soci.h>

#include <chrono>
#include <memory>
#include <numeric>
#include <optional>
#include <regex>
#include <thread>
#include <vector>

#include "capturing_sink.h"
#include "poolscope/base/duration_text.h"
#include "poolscope/base/site.h"
#include "poolscope/pool/errors.h"
#include "test_db.h"
#include "test_util.h"
#include "tracing_test_util.h"

namespace poolscope::tracing {
namespace {

using namespace std::chrono_literals;
using poolscope::testing::CapturingSink;
using poolscope::testing::eventually;
using poolscope::testing::TestBackend;
using poolscope::testing::TestDatabase;
using testing::find_site;

// This file's sites: the last two path components of its name.
std::string here(std::uint_least32_t line) {
  return "tracing/tracer_test.cc:TestBody():" + std::to_string(line);
}

class TracerTest : public ::testing::TestWithParam<TestBackend> {
 protected:
  void SetUp() override {
    db_ = std::make_unique<TestDatabase>(GetParam());
    std::tie(logger_, sink_) = CapturingSink::logger("tracer-test");
  }

  PoolConfig config(std::size_t size = 2, std::size_t overflow = 0) {
    PoolConfig c = db_->config(size, overflow);
    c.name = "traced";
    return c;
  }

  TracerConfig tracer_config() {
    TracerConfig c;
    c.logger = logger_;
    return c;
  }

  std::unique_ptr<TestDatabase> db_;
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<CapturingSink> sink_;
};

TEST_P(TracerTest, SessionLogLineNamesTheSiteAndTheRedactedUrl) {
  Pool pool(config());
  Tracer tracer(pool, tracer_config());
  const std::uint_least32_t line = __LINE__ + 1;
  Lease lease = pool.acquire();
  const std::vector<std::string> created = sink_->matching("Database session created");
  ASSERT_EQ(created.size(), 1u);
  EXPECT_EQ(created[0],
            "info: Database session created (id=" + std::to_string(lease.connection_id()) +
                ", pool=traced, url=" + pool.redacted_url() + ") [Called from: " + here(line) +
                "]");
  if (GetParam() == TestBackend::kPostgreSQL) {
    EXPECT_NE(created[0].find(":***@"), std::string::npos);
    for (const std::string& l : sink_->lines()) {
      EXPECT_EQ(l.find(poolscope::testing::pg_server().password), std::string::npos) << l;
    }
  }
  // A pooled checkout opens nothing, so logs nothing.
  lease.release();
  { Lease again = pool.acquire(); }
  EXPECT_EQ(sink_->matching("Database session created").size(), 1u);
}

TEST_P(TracerTest, CloseLineSaysWhy) {
  Pool pool(config());
  Tracer tracer(pool, tracer_config());
  std::uint64_t id = 0;
  {
    Lease lease = pool.acquire();
    id = lease.connection_id();
    lease.invalidate();
  }
  const auto closed = sink_->matching("Database session closed");
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_NE(closed[0].find("(id=" + std::to_string(id) + ", pool=traced, reason=broken, age="),
            std::string::npos)
      << closed[0];
}

TEST_P(TracerTest, LeakIsReportedOnceAndItsReturnIsLogged) {
  Pool pool(config());
  TracerConfig tc = tracer_config();
  tc.leak_threshold = 100ms;
  Tracer tracer(pool, tc);
  const std::uint_least32_t line = __LINE__ + 1;
  Lease leaked = pool.acquire();
  const std::string site = here(line);
  ASSERT_TRUE(eventually([&] { return !sink_->matching("Possible session leak").empty(); }));
  std::this_thread::sleep_for(300ms);  // several more scans: still one report
  const auto reports = sink_->matching("Possible session leak");
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].rfind("warning: ", 0), 0u) << reports[0];
  EXPECT_NE(reports[0].find("connection " + std::to_string(leaked.connection_id()) +
                            " (pool=traced) held for "),
            std::string::npos)
      << reports[0];
  EXPECT_NE(reports[0].find("by " + site + " on thread "), std::string::npos) << reports[0];
  EXPECT_NE(reports[0].find("past leak_threshold 100.0 ms"), std::string::npos) << reports[0];
  EXPECT_EQ(find_site(tracer.sites(), site).value().leaks, 1u);
  EXPECT_EQ(tracer.stats().leaks_reported, 1u);
  EXPECT_EQ(tracer.stats().leaks_returned, 0u);

  leaked.release();
  EXPECT_EQ(tracer.stats().leaks_returned, 1u);
  const auto returned = sink_->matching("Previously reported leaked lease was returned");
  ASSERT_EQ(returned.size(), 1u);
  EXPECT_NE(returned[0].find("site " + site + ", held for "), std::string::npos) << returned[0];

  // A short lease is never reported.
  { Lease quick = pool.acquire(); }
  std::this_thread::sleep_for(150ms);
  EXPECT_EQ(sink_->matching("Possible session leak").size(), 1u);
}

TEST_P(TracerTest, LeasesStillOutAtShutdownAreReported) {
  auto pool = std::make_unique<Pool>(config());
  Tracer tracer(*pool, tracer_config());
  const std::uint_least32_t line = __LINE__ + 1;
  Lease leaked = pool->acquire();
  pool.reset();
  const auto lines = sink_->matching("destroyed with 1 lease still out");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("by " + here(line) + " on thread "), std::string::npos) << lines[0];
  leaked.release();
}

TEST_P(TracerTest, TimeoutIsLoggedAndCountedForItsSite) {
  PoolConfig pc = config(1);
  pc.checkout_timeout = 50ms;
  pc.min_idle = 1;  // opened by the constructor: the connect is not what times out
  Pool pool(pc);
  Tracer tracer(pool, tracer_config());
  Lease holder = pool.acquire();
  std::uint_least32_t line = 0;
  std::thread([&] {
    line = __LINE__ + 1;
    EXPECT_THROW(pool.acquire(), PoolTimeout);
  }).join();
  // A lambda's site is named after the function around it.
  const std::string site = here(line);
  const auto lines = sink_->matching("Checkout timed out");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("[Called from: " + site + "]"), std::string::npos) << lines[0];
  EXPECT_EQ(find_site(tracer.sites(), site).value().timeouts, 1u);
}

TEST_P(TracerTest, PerSiteCountsAddUpToThePoolsTotals) {
  Pool pool(config(4, 4));
  Tracer tracer(pool, tracer_config());
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i) {
        if (t % 2 == 0) {
          Lease outer = pool.acquire();
          Lease nested = pool.acquire();
          *nested << "SELECT 1";
        } else {
          Lease lease = pool.acquire();
          *lease << "SELECT 1";
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const PoolStats stats = pool.stats();
  const std::vector<SiteStats> sites = tracer.sites();
  auto sum = [&](auto field) {
    return std::accumulate(sites.begin(), sites.end(), std::uint64_t{0},
                           [&](std::uint64_t n, const SiteStats& s) { return n + field(s); });
  };
  EXPECT_EQ(sum([](const SiteStats& s) { return s.acquires; }), stats.acquires);
  EXPECT_EQ(stats.acquires, 2400u);
  EXPECT_EQ(sum([](const SiteStats& s) { return s.reuses; }), stats.reuses);
  EXPECT_EQ(stats.reuses, 1200u);
  EXPECT_EQ(sum([](const SiteStats& s) { return s.connections_opened; }), stats.connections_opened);
  EXPECT_GT(
      sum([](const SiteStats& s) { return static_cast<std::uint64_t>(s.total_hold.count()); }), 0u);
  // Three sites did the work; "other" is last and empty.
  ASSERT_EQ(sites.size(), 4u);
  EXPECT_TRUE(sites.back().other);
  EXPECT_EQ(sites.back().acquires, 0u);
  EXPECT_EQ(sites[0].acquires, 1200u);
  EXPECT_GE(sites[0].max_hold, sites[0].total_hold / 1200);
}

TEST_P(TracerTest, PoolStartConfigurationAndShutdownAreLoggedWithoutThePassword) {
  PoolConfig pc = config(2, 1);
  pc.validation_query = "SELECT 1";
  auto pool = std::make_unique<Pool>(pc);
  TracerConfig tc = tracer_config();
  tc.stats_log_interval = 50ms;
  Tracer tracer(*pool, tc);
  const auto started = sink_->matching("Pool traced started");
  ASSERT_EQ(started.size(), 1u) << ::testing::PrintToString(sink_->lines());
  EXPECT_EQ(started[0], "info: Pool traced started (url=" + pool->redacted_url() +
                            ", pool_size=2, max_overflow=1, min_idle=0, checkout_timeout=" +
                            duration_text(pc.checkout_timeout) + ")");
  const auto configured = sink_->matching("Pool traced configuration: ");
  ASSERT_EQ(configured.size(), 1u);
  EXPECT_EQ(configured[0].rfind("debug: ", 0), 0u) << configured[0];
  for (const char* field :
       {"url=", ", name=traced, pool_size=2, max_overflow=1, checkout_timeout=", ", max_lifetime=",
        ", idle_timeout=", ", min_idle=0, validate_on_checkout=true, validation_interval=",
        ", validation_query='SELECT 1', reset_on_return=rollback, connect_timeout=",
        ", sqlite_busy_timeout=", ", transaction_pooler=false, housekeeping_interval="}) {
    EXPECT_NE(configured[0].find(field), std::string::npos) << field << " in " << configured[0];
  }
  { Lease lease = pool->acquire(); }
  // The stats line, at debug, every stats_log_interval (one may come while
  // the acquire above still waits for its connection: waiting=1).
  ASSERT_TRUE(eventually([&] { return !sink_->matching("Pool traced stats (").empty(); }));
  const std::string stats = sink_->matching("Pool traced stats (").front();
  EXPECT_TRUE(std::regex_match(stats, std::regex("debug: Pool traced stats \\(total=[0-9]+, "
                                                 "active=[0-9]+, idle=[0-9]+, waiting=[01]\\)")))
      << stats;
  pool.reset();
  const auto shut = sink_->matching("Pool traced shut down (");
  ASSERT_EQ(shut.size(), 1u);
  EXPECT_NE(shut[0].find("(1 checkouts traced, 1 connections opened, 0 timeouts)"),
            std::string::npos)
      << shut[0];
  if (GetParam() == TestBackend::kPostgreSQL) {
    for (const std::string& l : sink_->lines()) {
      EXPECT_EQ(l.find(poolscope::testing::pg_server().password), std::string::npos) << l;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, TracerTest,
                         ::testing::Values(TestBackend::kSqlite, TestBackend::kPostgreSQL),
                         [](const auto& p) { return poolscope::testing::backend_name(p.param); });

TEST(TracerConfigTest, ValidateNamesTheField) {
  auto message = [](auto breaks) {
    return poolscope::testing::validation_error<TracerConfig>(breaks);
  };

  EXPECT_EQ(message([](TracerConfig& c) { c.max_sites = 0; }),
            "TracerConfig.max_sites must be from 1 to 100000 (got 0)");
  EXPECT_NE(
      message([](TracerConfig& c) { c.leak_threshold = -1ms; }).find("TracerConfig.leak_threshold"),
      std::string::npos);
  EXPECT_NE(
      message([](TracerConfig& c) { c.churn_threshold = -2; }).find("TracerConfig.churn_threshold"),
      std::string::npos);
  EXPECT_NE(
      message([](TracerConfig& c) { c.churn_window = 0ms; }).find("TracerConfig.churn_window"),
      std::string::npos);
  EXPECT_NE(message([](TracerConfig& c) { c.stack_depth = 99; }).find("(got 99)"),
            std::string::npos);
  EXPECT_EQ(message([](TracerConfig& c) { c.churn_loop = 1; }),
            "TracerConfig.churn_loop must be 0 (off) or from 2 to 1000000 (got 1)");
  EXPECT_EQ(message([](TracerConfig& c) { c.churn_gap = 0us; }),
            "TracerConfig.churn_gap must be from 1 us to 1 s (got 0 us)");
  EXPECT_EQ(message([](TracerConfig& c) { c.churn_gap = 2s; }),
            "TracerConfig.churn_gap must be from 1 us to 1 s (got 2000000 us)");
  EXPECT_NE(message([](TracerConfig& c) { c.churn_quiet = -1ms; }).find("TracerConfig.churn_quiet"),
            std::string::npos);
  EXPECT_EQ(message([](TracerConfig& c) { c.timeout_log_interval = 0ms; }),
            "TracerConfig.timeout_log_interval must be positive (got 0 ms)");
  EXPECT_NE(message([](TracerConfig& c) {
              c.stats_log_interval = -5ms;
            }).find("TracerConfig.stats_log_interval"),
            std::string::npos);
  EXPECT_EQ(message([](TracerConfig& c) { c.churn_loop = 0; }), "accepted") << "0: off";
  EXPECT_EQ(message([](TracerConfig&) {}), "accepted");
}

}  // namespace
}  // namespace poolscope::tracing
