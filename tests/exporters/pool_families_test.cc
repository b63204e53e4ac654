// What a pool's families mean, as a HikariCP user reads them: the acquire
// histogram times the whole acquire() in one fixed set of buckets for every
// pool, waiting threads are a family of their own, and checkout_timeout is a
// gauge.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <thread>

#include "capturing_sink.h"
#include "exposition.h"
#include "poolscope/exporters/metrics_collector.h"
#include "test_db.h"
#include "test_util.h"

namespace poolscope::exporters {
namespace {

using namespace std::chrono_literals;
using poolscope::testing::parse_samples;
using poolscope::testing::TestBackend;
using poolscope::testing::TestDatabase;

// le -> cumulative count of one histogram, summed over the series that
// match the filter, as `sum by (le)` does.
std::map<double, double> buckets_by_le(const std::string& text, const std::string& metric,
                                       const std::string& must_contain = "") {
  std::map<double, double> out;
  for (const auto& [series, value] : parse_samples(text)) {
    if (!series.starts_with(metric + "_bucket{")) continue;
    if (series.find(must_contain) == std::string::npos) continue;
    const std::size_t le = series.find("le=\"");
    const std::string bound = series.substr(le + 4, series.find('"', le + 4) - le - 4);
    out[bound == "+Inf" ? INFINITY : std::stod(bound)] += value;
  }
  return out;
}

// Prometheus's histogram_quantile over cumulative buckets.
double histogram_quantile(double q, const std::map<double, double>& buckets) {
  const double total = buckets.rbegin()->second;
  const double rank = q * total;
  double lower = 0, below = 0;
  for (const auto& [le, count] : buckets) {
    if (count >= rank) {
      if (std::isinf(le)) return lower;
      return lower + (le - lower) * (rank - below) / (count - below);
    }
    lower = le;
    below = count;
  }
  return lower;
}

class MetricsCollectorFamiliesTest : public ::testing::Test {
 protected:
  PoolConfig config(const std::string& name, std::chrono::milliseconds checkout_timeout,
                    std::size_t size = 1) {
    PoolConfig c = db_.config(size);
    c.name = name;
    c.checkout_timeout = checkout_timeout;
    return c;
  }

  // A thread waits wait in acquire() on pool (1 + 0, whose lease the caller
  // holds) until the lease is released after wait.
  static void make_one_wait(Pool& pool, std::chrono::milliseconds wait) {
    std::optional<Lease> held(pool.acquire());
    std::thread waiter([&] { Lease lease = pool.acquire(); });
    ASSERT_TRUE(poolscope::testing::eventually([&] { return pool.stats().pending == 1; }));
    std::this_thread::sleep_for(wait);
    held.reset();
    waiter.join();
  }

  TestDatabase db_{TestBackend::kSqlite};
};

TEST_F(MetricsCollectorFamiliesTest, AcquireBucketsAreOneFixedSetWhateverTheCheckoutTimeout) {
  Pool fast(config("fast", 250ms)), slow(config("slow", 30s));
  MetricsCollector metrics;
  metrics.add_pool(fast);
  metrics.add_pool(slow);
  const std::string text = metrics.text();
  const auto les = [&](const std::string& pool) {
    std::vector<double> out;
    for (const auto& [le, count] :
         buckets_by_le(text, "poolscope_connections_acquire_seconds", "pool=\"" + pool + "\""))
      out.push_back(le);
    return out;
  };
  std::vector<double> expected = default_acquire_buckets();
  expected.push_back(INFINITY);
  EXPECT_EQ(les("fast"), expected);
  EXPECT_EQ(les("slow"), expected);
  EXPECT_LE(expected.front(), 1e-6) << "fine enough to tell a ready connection from a wait";
  EXPECT_EQ(parse_samples(text).at("poolscope_connections_checkout_timeout_seconds{pool=\"fast\"}"),
            0.25);
  EXPECT_EQ(parse_samples(text).at("poolscope_connections_checkout_timeout_seconds{pool=\"slow\"}"),
            30);
}

TEST_F(MetricsCollectorFamiliesTest, BucketsOfTwoPoolsWithDifferentTimeoutsSumMonotonicallyByLe) {
  Pool fast(config("fast", 250ms)), slow(config("slow", 30s));
  MetricsCollector metrics;
  metrics.add_pool(fast);
  metrics.add_pool(slow);
  for (int i = 0; i < 200; ++i) {
    Lease a = fast.acquire();
    a.release();
    Lease b = slow.acquire();
  }
  make_one_wait(fast, 20ms);
  make_one_wait(slow, 60ms);
  const std::map<double, double> summed =
      buckets_by_le(metrics.text(), "poolscope_connections_acquire_seconds");
  ASSERT_EQ(summed.size(), default_acquire_buckets().size() + 1) << "one le set, not two";
  double previous = 0;
  for (const auto& [le, count] : summed) {
    EXPECT_GE(count, previous) << "sum by (le) went down at le=" << le;
    previous = count;
  }
  EXPECT_EQ(summed.rbegin()->second, 404) << "every acquire, each in one bucket";
  // The workload is fast: its median is far below a millisecond, not a
  // checkout_timeout (30 s when the le sets differed).
  EXPECT_LT(histogram_quantile(0.5, summed), 1e-3);
  EXPECT_GT(histogram_quantile(0.999, summed), 0.01) << "the two waits are in the tail";
}

TEST_F(MetricsCollectorFamiliesTest, AcquireTimesTheWholeAcquireNotOnlyTheWait) {
  Pool pool(config("whole", 2s, 2));
  MetricsCollector metrics;
  metrics.add_pool(pool);
  { Lease lease = pool.acquire(); }  // opens a connection for this caller: no wait
  const auto s = parse_samples(metrics.text());
  EXPECT_EQ(s.at("poolscope_connections_waits_total{pool=\"whole\"}"), 0);
  EXPECT_EQ(s.at("poolscope_connections_wait_seconds_total{pool=\"whole\"}"), 0);
  EXPECT_EQ(s.at("poolscope_connections_creation_seconds_count{pool=\"whole\"}"), 1);
  const double acquire = s.at("poolscope_connections_acquire_seconds_sum{pool=\"whole\"}");
  EXPECT_GE(acquire, s.at("poolscope_connections_creation_seconds_sum{pool=\"whole\"}"))
      << "the connect made inside acquire() is part of it";
  EXPECT_GT(acquire, 0);
}

TEST_F(MetricsCollectorFamiliesTest, QueueWaitIsItsOwnFigure) {
  Pool pool(config("queued", 2s));
  MetricsCollector metrics;
  metrics.add_pool(pool);
  make_one_wait(pool, 100ms);
  const auto s = parse_samples(metrics.text());
  EXPECT_EQ(s.at("poolscope_connections_waits_total{pool=\"queued\"}"), 1);
  const double waited = s.at("poolscope_connections_wait_seconds_total{pool=\"queued\"}");
  EXPECT_GE(waited, 0.09);
  EXPECT_LT(waited, 2.0);
  EXPECT_GE(s.at("poolscope_connections_acquire_seconds_sum{pool=\"queued\"}"), waited);
}

TEST_F(MetricsCollectorFamiliesTest, WaitingThreadsAreTheirOwnFamilyWithTheOldestWaitersAge) {
  Pool pool(config("waited", 5s));
  MetricsCollector metrics;
  metrics.add_pool(pool);
  std::optional<Lease> held(pool.acquire());
  std::thread waiter([&] { Lease lease = pool.acquire(); });
  ASSERT_TRUE(poolscope::testing::eventually([&] { return pool.stats().pending == 1; }));
  std::this_thread::sleep_for(200ms);
  const auto s = parse_samples(metrics.text());
  held.reset();
  waiter.join();
  EXPECT_EQ(s.at("poolscope_connections_pending{pool=\"waited\"}"), 1);
  const double oldest = s.at("poolscope_connections_pending_oldest_wait_seconds{pool=\"waited\"}");
  EXPECT_GE(oldest, 0.19);
  EXPECT_LT(oldest, 5.0);
  EXPECT_EQ(s.count("poolscope_connections{pool=\"waited\",state=\"pending\"}"), 0u);
  // sum(poolscope_connections) counts connections only: the one held.
  EXPECT_EQ(s.at("poolscope_connections{pool=\"waited\",state=\"active\"}") +
                s.at("poolscope_connections{pool=\"waited\",state=\"idle\"}"),
            1);
  const auto after = parse_samples(metrics.text());
  EXPECT_EQ(after.at("poolscope_connections_pending{pool=\"waited\"}"), 0);
  EXPECT_EQ(after.at("poolscope_connections_pending_oldest_wait_seconds{pool=\"waited\"}"), 0);
}

TEST_F(MetricsCollectorFamiliesTest, TheFamiliesAreTheDocumentedOnes) {
  Pool pool(config("all", 2s));
  tracing::TracerConfig tc;
  tc.logger = poolscope::testing::CapturingSink::logger("families").first;
  tracing::Tracer tracer(pool, tc);
  cache::TtlCache<std::string, int> configs({.name = "configs"});
  MetricsCollector metrics;
  metrics.add_pool(pool);
  metrics.add_tracer(tracer);
  metrics.add_cache(configs, "all");
  { Lease lease = pool.acquire(); }
  std::map<std::string, std::string> families;  // name -> type
  std::istringstream in(metrics.text());
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with("# TYPE ")) continue;
    const std::size_t space = line.rfind(' ');
    families[line.substr(7, space - 7)] = line.substr(space + 1);
  }
  const std::map<std::string, std::string> expected = {
      {"poolscope_connections", "gauge"},
      {"poolscope_connections_pending", "gauge"},
      {"poolscope_connections_pending_oldest_wait_seconds", "gauge"},
      {"poolscope_connections_max", "gauge"},
      {"poolscope_connections_size", "gauge"},
      {"poolscope_connections_min", "gauge"},
      {"poolscope_connections_overflow", "gauge"},
      {"poolscope_connections_checkout_timeout_seconds", "gauge"},
      {"poolscope_connections_timeout_total", "counter"},
      {"poolscope_connections_waits_total", "counter"},
      {"poolscope_connections_wait_seconds_total", "counter"},
      {"poolscope_connections_acquire_seconds", "histogram"},
      {"poolscope_connections_usage_seconds", "histogram"},
      {"poolscope_connections_creation_seconds", "histogram"},
      {"poolscope_connections_closed_total", "counter"},
      {"poolscope_connection_errors_total", "counter"},
      {"poolscope_connections_leaked_total", "counter"},
      {"poolscope_connections_reuses_total", "counter"},
      {"poolscope_statements_prepared_total", "counter"},
      {"poolscope_statement_cache_hits_total", "counter"},
      {"poolscope_site_acquires_total", "counter"},
      {"poolscope_site_reuses_total", "counter"},
      {"poolscope_site_usage_seconds_total", "counter"},
      {"poolscope_site_timeouts_total", "counter"},
      {"poolscope_site_leaks_total", "counter"},
      {"poolscope_sites_folded", "gauge"},
      {"poolscope_cache_requests_total", "counter"},
      {"poolscope_cache_loads_total", "counter"},
      {"poolscope_cache_load_seconds_total", "counter"},
      {"poolscope_cache_evictions_total", "counter"},
      {"poolscope_cache_entries", "gauge"},
      {"poolscope_cache_bytes", "gauge"},
      {"poolscope_cache_sessions_avoided_total", "counter"},
      {"poolscope_build_info", "gauge"}};
  EXPECT_EQ(families, expected);
}

}  // namespace
}  // namespace poolscope::exporters
