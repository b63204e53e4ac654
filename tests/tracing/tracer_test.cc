// What a user of poolscope::tracing observes: the log lines and the site table.

#include "poolscope/tracing/tracer.h"

#include <gtest/gtest.h>
#include <soci/soci.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <regex>
#include <thread>
#include <vector>

#include "capturing_sink.h"
#include "poolscope/base/site.h"
#include "poolscope/pool/errors.h"
#include "test_db.h"
#include "test_util.h"

namespace poolscope::tracing {
namespace {

using namespace std::chrono_literals;
using poolscope::testing::CapturingSink;
using poolscope::testing::eventually;
using poolscope::testing::TestBackend;
using poolscope::testing::TestDatabase;

// A copy: sites() returns a temporary. value() of a missing site throws,
// which fails the test instead of crashing it.
std::optional<SiteStats> find_site(const std::vector<SiteStats>& sites, const std::string& name) {
  for (const SiteStats& s : sites) {
    if (s.name == name) return s;
  }
  return std::nullopt;
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
                ", pool=traced, url=" + pool.redacted_url() +
                ") [Called from: tracer_test.cc:TestBody():" + std::to_string(line) + "]");
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
  const std::string site = "tracer_test.cc:TestBody():" + std::to_string(line);
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
  EXPECT_NE(lines[0].find("by tracer_test.cc:TestBody():" + std::to_string(line)),
            std::string::npos)
      << lines[0];
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
  const std::string site = "tracer_test.cc:TestBody():" + std::to_string(line);
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

INSTANTIATE_TEST_SUITE_P(Backends, TracerTest,
                         ::testing::Values(TestBackend::kSqlite, TestBackend::kPostgreSQL),
                         [](const auto& p) { return poolscope::testing::backend_name(p.param); });

// Tests that need no server: SQLite only.
class TracerSqliteTest : public ::testing::Test {
 protected:
  void SetUp() override { std::tie(logger_, sink_) = CapturingSink::logger("tracer-sqlite"); }
  TestDatabase db_{TestBackend::kSqlite};
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<CapturingSink> sink_;
};

Lease acquire_at(Pool& pool, std::source_location site) { return pool.acquire(site); }

// Two threads meeting: one holds at a point until the other says go on.
// The waits give up after a long guard so that a regression fails instead
// of hanging; the tests assert on the order of events, not on time.
class Rendezvous {
 public:
  // The held thread: says it arrived, then waits for go(). False if go()
  // never came.
  bool arrive_and_wait() {
    std::unique_lock lock(mu_);
    arrived_ = true;
    cv_.notify_all();
    return cv_.wait_for(lock, std::chrono::seconds(20), [&] { return went_; });
  }
  // The other thread: waits until the held one arrived.
  bool wait_arrived() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(20), [&] { return arrived_; });
  }
  void go() {
    std::lock_guard lock(mu_);
    went_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool arrived_ = false;
  bool went_ = false;
};

TEST_F(TracerSqliteTest, ALeaseReturnedWhileItsLeakIsReportedIsStillLoggedAsReturned) {
  Pool pool(db_.config(2));
  auto [logger, sink] = CapturingSink::logger("tracer-hook");
  Rendezvous reporting;
  std::atomic<bool> once{false};
  sink->set_hook([&](const std::string& line) {
    if (line.find("Possible session leak") != std::string::npos && !once.exchange(true)) {
      reporting.arrive_and_wait();
    }
  });
  TracerConfig tc;
  tc.logger = logger;
  tc.leak_threshold = 50ms;
  Tracer tracer(pool, tc);
  Lease leaked = pool.acquire();
  ASSERT_TRUE(reporting.wait_arrived());
  leaked.release();  // back while the tracer thread is writing the report
  reporting.go();

  ASSERT_TRUE(eventually([&] { return tracer.stats().leaks_returned == 1; }))
      << ::testing::PrintToString(sink->lines());
  const std::vector<std::string> lines = sink->lines();
  const auto leak = std::find_if(lines.begin(), lines.end(), [](const std::string& l) {
    return l.find("Possible session leak") != std::string::npos;
  });
  const auto back = std::find_if(lines.begin(), lines.end(), [](const std::string& l) {
    return l.find("Previously reported leaked lease was returned") != std::string::npos;
  });
  ASSERT_NE(leak, lines.end());
  ASSERT_NE(back, lines.end());
  EXPECT_LT(leak, back) << "the return is logged after the report";
  EXPECT_EQ(sink->matching("Previously reported leaked lease was returned").size(), 1u);
  EXPECT_EQ(tracer.stats().leaks_reported, 1u);
}

TEST_F(TracerSqliteTest, ACheckinDoesNotWaitForALeakReportBeingWritten) {
  Pool pool(db_.config(3));
  auto [logger, sink] = CapturingSink::logger("tracer-hook");
  Rendezvous reporting;
  std::atomic<std::uint64_t> hold_report_of{0};
  sink->set_hook([&](const std::string& line) {
    const std::uint64_t id = hold_report_of.load();
    if (id != 0 && line.find(": Possible session leak: connection " + std::to_string(id) + " ") !=
                       std::string::npos) {
      hold_report_of.store(0);
      reporting.arrive_and_wait();
    }
  });
  TracerConfig tc;
  tc.logger = logger;
  tc.leak_threshold = 50ms;
  Tracer tracer(pool, tc);
  Lease leaked_for_good = pool.acquire();
  ASSERT_TRUE(eventually([&] { return tracer.stats().leaks_reported == 1; }));
  // A second leak, whose report the tracer thread is held in the middle of.
  std::optional<Lease> second;
  second.emplace(pool.acquire_new());  // not the nested reuse of the first
  hold_report_of.store(second->connection_id());
  ASSERT_TRUE(reporting.wait_arrived()) << ::testing::PrintToString(sink->lines());
  // Meanwhile other leases come and go without waiting for the report.
  std::atomic<bool> checked_in{false};
  std::thread other([&] {
    { Lease lease = pool.acquire(); }
    checked_in = true;
    reporting.go();
  });
  const bool went_on = eventually([&] { return checked_in.load(); }, 20s);
  reporting.go();
  other.join();
  EXPECT_TRUE(went_on) << "a checkin waited for the tracer thread's leak report";
  second.reset();
  EXPECT_TRUE(eventually([&] { return tracer.stats().leaks_returned == 1; }));
  EXPECT_EQ(tracer.stats().leaks_reported, 2u);
}

// The "over the last N s" of a churn warning.
double churn_span_seconds(const std::string& warning) {
  std::smatch m;
  if (!std::regex_search(warning, m, std::regex("over the last ([0-9.]+) s"))) return -1;
  return std::stod(m[1]);
}

TEST_F(TracerSqliteTest, ChurnTurnedOnLaterIsJudgedOverItsWindow) {
  Pool pool(db_.config(2));
  TracerConfig tc;
  tc.logger = logger_;
  tc.churn_threshold = 0;  // off at start
  tc.churn_window = 100ms;
  tc.leak_threshold = 0ms;
  Tracer tracer(pool, tc);
  tracer.set_churn_threshold(200);
  const std::source_location loop = std::source_location::current();
  ASSERT_TRUE(eventually([&] {
    for (int i = 0; i < 20; ++i) {
      Lease lease = acquire_at(pool, loop);
      std::this_thread::sleep_for(200us);
    }
    return !sink_->matching("Session churn at ").empty();
  }));
  const std::string warning = sink_->matching("Session churn at ").front();
  // Sampled ten times per window, the rate is over about one window (not
  // over the one-second period of a tracer started with churn off).
  const double span = churn_span_seconds(warning);
  EXPECT_GE(span, 0) << warning;
  EXPECT_LT(span, 0.5) << warning;
}

TEST_F(TracerSqliteTest, APoolAttachedAfterAnotherStartsItsChurnHistoryAfresh) {
  TracerConfig tc;
  tc.logger = logger_;
  tc.churn_threshold = 1e7;  // no loop here comes near it
  tc.churn_window = 100ms;
  Tracer tracer(tc);
  const std::source_location site = std::source_location::current();
  std::optional<Pool> pool;
  // Pools come and go in the same storage: a new tracer-side record may
  // land where the last one was.
  for (int round = 0; round < 5; ++round) {
    pool.emplace(db_.config(1));
    tracer.attach(*pool);
    for (int i = 0; i < (round % 2 == 0 ? 400 : 1); ++i) acquire_at(*pool, site);
    std::this_thread::sleep_for(60ms);  // let the tracer sample this pool
    pool.reset();
  }
  pool.emplace(db_.config(1));
  tracer.attach(*pool);
  acquire_at(*pool, site);
  std::this_thread::sleep_for(300ms);  // a few windows of samples
  EXPECT_TRUE(sink_->matching("Session churn at ").empty())
      << ::testing::PrintToString(sink_->lines());
  EXPECT_EQ(tracer.stats().churn_warnings, 0u);
}

TEST_F(TracerSqliteTest, ChurnWarningFiresForALoopSiteAndNotForAQuietOne) {
  Pool pool(db_.config(2));
  TracerConfig tc;
  tc.logger = logger_;
  tc.churn_threshold = 200;
  tc.churn_window = 200ms;
  Tracer tracer(pool, tc);

  const std::source_location quiet = std::source_location::current();
  for (int i = 0; i < 3; ++i) acquire_at(pool, quiet);
  const std::source_location loop = std::source_location::current();
  const auto until = std::chrono::steady_clock::now() + 700ms;
  while (std::chrono::steady_clock::now() < until) {
    Lease lease = acquire_at(pool, loop);  // a lease per iteration: churn
    std::this_thread::sleep_for(200us);
  }
  ASSERT_TRUE(eventually([&] { return !sink_->matching("churn").empty(); }))
      << ::testing::PrintToString(sink_->lines());
  const auto warnings = sink_->matching("Session churn at ");
  ASSERT_FALSE(warnings.empty());
  for (const std::string& w : warnings) {
    EXPECT_EQ(
        w.rfind("warning: Session churn at " + format_site(loop) + " (pool=" + pool.name() + "): ",
                0),
        0u)
        << w;
    EXPECT_NE(w.find("acquires/s over the last"), std::string::npos) << w;
    EXPECT_NE(w.find("Hold one lease around the loop"), std::string::npos) << w;
  }
  EXPECT_TRUE(sink_->matching("Session churn at " + format_site(quiet)).empty());
  // At most one warning per window: 0.7 s of churn is at most four windows.
  EXPECT_LE(warnings.size(), 5u);
  EXPECT_EQ(tracer.stats().churn_warnings, warnings.size());
}

TEST_F(TracerSqliteTest, SitesPastTheCapFoldIntoOther) {
  Pool pool(db_.config(1));
  TracerConfig tc;
  tc.logger = logger_;
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

TEST_F(TracerSqliteTest, SitesSortByWhatAPersonAsksFirst) {
  Pool pool(db_.config(1));
  TracerConfig tc;
  tc.logger = logger_;
  Tracer tracer(pool, tc);
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

[[gnu::noinline]] Lease open_for_account(Pool& pool) { return pool.acquire(); }

TEST_F(TracerSqliteTest, StackCaptureAddsTheCallerChain) {
  Pool pool(db_.config(2));
  TracerConfig tc;
  tc.logger = logger_;
  tc.capture_stacks = true;
  tc.leak_threshold = 50ms;
  Tracer tracer(pool, tc);
  Lease lease = open_for_account(pool);
  const auto created = sink_->matching("Database session created");
  ASSERT_EQ(created.size(), 1u);
  // The site is inside open_for_account(); its caller is this test body.
  EXPECT_NE(created[0].find("[Called from: tracer_test.cc:open_for_account():"), std::string::npos)
      << created[0];
  EXPECT_NE(created[0].find(" <- tracer_test.cc:TestBody():"), std::string::npos) << created[0];
  // The leak report carries the same chain.
  ASSERT_TRUE(eventually([&] { return !sink_->matching("Possible session leak").empty(); }));
  EXPECT_NE(
      sink_->matching("Possible session leak")[0].find("called from tracer_test.cc:TestBody():"),
      std::string::npos)
      << sink_->matching("Possible session leak")[0];
}

TEST_F(TracerSqliteTest, WithoutStackCaptureTheLineHasOnlyTheSite) {
  Pool pool(db_.config(2));
  TracerConfig tc;
  tc.logger = logger_;
  Tracer tracer(pool, tc);
  Lease lease = open_for_account(pool);
  const auto created = sink_->matching("Database session created");
  ASSERT_EQ(created.size(), 1u);
  EXPECT_NE(created[0].find("[Called from: tracer_test.cc:open_for_account():"), std::string::npos);
  EXPECT_EQ(created[0].find(" <- "), std::string::npos) << created[0];
}

TEST_F(TracerSqliteTest, SitesAreTrackedPerPoolAndMergedAcrossThem) {
  PoolConfig a_config = db_.config(1);
  a_config.name = "a";
  PoolConfig b_config = db_.config(1);
  b_config.name = "b";
  Pool a(a_config), b(b_config);
  TracerConfig tc;
  tc.logger = logger_;
  Tracer tracer(tc);
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

TEST_F(TracerSqliteTest, ALeaseStillOutCountsAsAnAcquireOfItsSite) {
  Pool pool(db_.config(2));
  TracerConfig tc;
  tc.logger = logger_;
  Tracer tracer(pool, tc);
  const std::source_location site = std::source_location::current();
  Lease held = acquire_at(pool, site);
  auto acquires = [&] {
    for (const SiteStats& s : tracer.sites()) {
      if (s.name == format_site(site)) return s.acquires;
    }
    return std::uint64_t{0};
  };
  EXPECT_EQ(acquires(), 1u) << "counted while out";
  EXPECT_EQ(find_site(tracer.sites(), format_site(site)).value().checkins, 0u) << "not back yet";
  held.release();
  EXPECT_EQ(acquires(), 1u) << "and not twice once back";
  acquire_at(pool, site);
  EXPECT_EQ(acquires(), 2u);
}

TEST_F(TracerSqliteTest, CountsOfThreadsThatExitedAreKept) {
  Pool pool(db_.config(2));
  TracerConfig tc;
  tc.logger = logger_;
  Tracer tracer(pool, tc);
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
  EXPECT_EQ(s->checkins, 120u);
  EXPECT_EQ(pool.stats().acquires, 120u);
}

TEST_F(TracerSqliteTest, ATracerCanGoBeforeItsPool) {
  Pool pool(db_.config(2));
  {
    TracerConfig tc;
    tc.logger = logger_;
    Tracer tracer(pool, tc);
    Lease lease = pool.acquire();
  }
  Lease lease = pool.acquire();  // no observer left; nothing breaks
  *lease << "SELECT 1";
  EXPECT_EQ(pool.stats().acquires, 2u);
}

TEST_F(TracerSqliteTest, AttachingTwiceIsRefused) {
  Pool pool(db_.config(1));
  TracerConfig tc;
  tc.logger = logger_;
  Tracer tracer(pool, tc);
  EXPECT_THROW(tracer.attach(pool), std::invalid_argument);
  tracer.detach(pool);
  { Lease lease = pool.acquire(); }
  EXPECT_EQ(tracer.sites().back().acquires + tracer.sites().size(), 1u) << "only 'other', empty";
}

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
  EXPECT_EQ(message([](TracerConfig&) {}), "accepted");
}

}  // namespace
}  // namespace poolscope::tracing
