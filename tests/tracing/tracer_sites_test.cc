// The site table: what Tracer::sites() and pool_sites() report, read from
// the registry as it was counted.

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <thread>
#include <vector>

#include "capturing_sink.h"
#include "poolscope/base/site.h"
#include "poolscope/tracing/tracer.h"
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
using testing::acquire_at;
using testing::find_site;

class TracerSitesTest : public ::testing::Test {
 protected:
  void SetUp() override { std::tie(logger_, sink_) = CapturingSink::logger("tracer-sites"); }
  TracerConfig tracer_config() {
    TracerConfig tc;
    tc.logger = logger_;
    return tc;
  }
  TestDatabase db_{TestBackend::kSqlite};
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<CapturingSink> sink_;
};

TEST_F(TracerSitesTest, SitesPastTheCapFoldIntoOther) {
  Pool pool(db_.config(1));
  TracerConfig tc = tracer_config();
  tc.max_sites = 2;
  Tracer tracer(pool, tc);
  const std::source_location a = std::source_location::current();
  const std::source_location b = std::source_location::current();
  const std::source_location c = std::source_location::current();
  const std::source_location d = std::source_location::current();
  for (const auto& site : {a, a, b, c, d, d, d}) acquire_at(pool, site);
  const std::vector<SiteStats> sites = tracer.sites();
  ASSERT_EQ(sites.size(), 3u);
  EXPECT_EQ(sites[0].name, format_site(a));
  EXPECT_EQ(sites[0].acquires, 2u);
  EXPECT_EQ(sites[1].name, format_site(b));
  EXPECT_TRUE(sites[2].other);
  EXPECT_EQ(sites[2].name, "other");
  EXPECT_EQ(sites[2].acquires, 4u);
  EXPECT_EQ(tracer.folded_sites(), 2u);
}

TEST_F(TracerSitesTest, SitesSortByWhatAPersonAsksFirst) {
  Pool pool(db_.config(1));
  Tracer tracer(pool, tracer_config());
  const std::source_location many = std::source_location::current();
  const std::source_location slow = std::source_location::current();
  for (int i = 0; i < 5; ++i) acquire_at(pool, many);
  {
    Lease lease = acquire_at(pool, slow);
    std::this_thread::sleep_for(30ms);
  }
  EXPECT_EQ(tracer.sites(SiteOrder::kAcquires)[0].name, format_site(many));
  EXPECT_EQ(tracer.sites(SiteOrder::kTotalHold)[0].name, format_site(slow));
  EXPECT_EQ(tracer.sites(SiteOrder::kMaxHold)[0].name, format_site(slow));
  EXPECT_GE(tracer.sites(SiteOrder::kMaxHold)[0].max_hold, 30ms);
}

TEST_F(TracerSitesTest, SitesAreTrackedPerPoolAndMergedAcrossThem) {
  PoolConfig a_config = db_.config(1);
  a_config.name = "a";
  PoolConfig b_config = db_.config(1);
  b_config.name = "b";
  Pool a(a_config), b(b_config);
  Tracer tracer(tracer_config());
  tracer.attach(a);
  tracer.attach(b);
  const std::source_location shared = std::source_location::current();
  const std::source_location only_b = std::source_location::current();
  for (int i = 0; i < 3; ++i) acquire_at(a, shared);
  for (int i = 0; i < 2; ++i) acquire_at(b, shared);
  acquire_at(b, only_b);
  const std::vector<PoolSites> pools = tracer.pool_sites();
  ASSERT_EQ(pools.size(), 2u);
  EXPECT_EQ(pools[0].pool, "a");
  EXPECT_EQ(pools[0].sites[0].name, format_site(shared));
  EXPECT_EQ(pools[0].sites[0].acquires, 3u);
  EXPECT_EQ(pools[0].sites.size(), 2u) << "the shared site and 'other'";
  EXPECT_EQ(pools[1].pool, "b");
  EXPECT_EQ(pools[1].sites[0].acquires, 2u);
  EXPECT_EQ(pools[1].sites[1].name, format_site(only_b));
  const std::vector<SiteStats> merged = tracer.sites();
  ASSERT_EQ(merged.size(), 3u);
  EXPECT_EQ(merged[0].name, format_site(shared));
  EXPECT_EQ(merged[0].acquires, 5u);
  EXPECT_TRUE(merged[2].other);
}

// A checkout is counted once, when its lease comes back; while it is out,
// the site's leases-out gauge shows it (as of the tracer's last round).
TEST_F(TracerSitesTest, ALeaseStillOutIsActiveAndIsCountedWhenItComesBack) {
  Pool pool(db_.config(2));
  TracerConfig tc = tracer_config();
  tc.leak_threshold = 40ms;  // rounds every 10 ms
  Tracer tracer(pool, tc);
  const std::source_location site = std::source_location::current();
  auto stats = [&] { return find_site(tracer.sites(), format_site(site)); };
  Lease held = acquire_at(pool, site);
  ASSERT_TRUE(eventually([&] { return stats() && stats()->active == 1; }))
      << "the gauge shows the lease out";
  EXPECT_EQ(stats()->acquires, 0u) << "counted when it comes back";
  held.release();
  EXPECT_EQ(stats()->acquires, 1u) << "counted at once, as the checkin happens";
  EXPECT_EQ(stats()->checkins, 1u);
  EXPECT_TRUE(eventually([&] { return stats()->active == 0; }));
  acquire_at(pool, site);
  EXPECT_EQ(stats()->acquires, 2u);
  EXPECT_EQ(pool.stats().acquires, 2u);
}

TEST_F(TracerSitesTest, CountsOfThreadsThatExitedAreKept) {
  Pool pool(db_.config(2));
  Tracer tracer(pool, tracer_config());
  const std::source_location site = std::source_location::current();
  for (int round = 0; round < 3; ++round) {  // later threads take over the tables of earlier ones
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 10; ++i) acquire_at(pool, site);
      });
    }
    for (std::thread& t : threads) t.join();
  }
  const std::optional<SiteStats> s = find_site(tracer.sites(), format_site(site));
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->acquires, 120u);
  EXPECT_EQ(pool.stats().acquires, 120u);
}

TEST_F(TracerSitesTest, ATracerCanGoBeforeItsPool) {
  Pool pool(db_.config(2));
  {
    Tracer tracer(pool, tracer_config());
    Lease lease = pool.acquire();
  }
  Lease lease = pool.acquire();  // no observer left; nothing breaks
  *lease << "SELECT 1";
  EXPECT_EQ(pool.stats().acquires, 2u);
}

TEST_F(TracerSitesTest, AttachingTwiceIsRefused) {
  Pool pool(db_.config(1));
  Tracer tracer(pool, tracer_config());
  EXPECT_THROW(tracer.attach(pool), std::invalid_argument);
  tracer.detach(pool);
  { Lease lease = pool.acquire(); }
  EXPECT_EQ(tracer.sites().back().acquires + tracer.sites().size(), 1u) << "only 'other', empty";
}

}  // namespace
}  // namespace poolscope::tracing
