// The rate threshold, an option now (off by default): a site taking more
// checkouts per second than churn_threshold over churn_window.

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <regex>
#include <string>
#include <thread>

#include "capturing_sink.h"
#include "poolscope/base/site.h"
#include "poolscope/tracing/tracer.h"
#include "test_db.h"
#include "test_util.h"
#include "tracing_test_util.h"

namespace poolscope::tracing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using poolscope::testing::CapturingSink;
using poolscope::testing::eventually;
using poolscope::testing::TestBackend;
using poolscope::testing::TestDatabase;
using testing::acquire_at;

class TracerChurnRateTest : public ::testing::Test {
 protected:
  void SetUp() override { std::tie(logger_, sink_) = CapturingSink::logger("churn-rate"); }
  TracerConfig tracer_config() {
    TracerConfig tc;
    tc.logger = logger_;
    tc.churn_loop = 0;  // the rate option alone: these loops have the shape too
    return tc;
  }
  TestDatabase db_{TestBackend::kSqlite};
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<CapturingSink> sink_;
};

TEST_F(TracerChurnRateTest, TheRateOptionIsOffByDefault) {
  EXPECT_EQ(TracerConfig{}.churn_threshold, 0);
  EXPECT_EQ(TracerConfig{}.churn_loop, 20u);
}

TEST_F(TracerChurnRateTest, TheRateOptionTurnedOnLaterIsJudgedOverItsWindow) {
  Pool pool(db_.config(2));
  TracerConfig tc = tracer_config();
  tc.churn_window = 100ms;
  tc.leak_threshold = 0ms;
  Tracer tracer(pool, tc);
  tracer.set_churn_threshold(200);
  EXPECT_EQ(tracer.churn_threshold(), 200);
  const std::source_location loop = std::source_location::current();
  ASSERT_TRUE(eventually([&] {
    for (int i = 0; i < 20; ++i) {
      Lease lease = acquire_at(pool, loop);
      std::this_thread::sleep_for(200us);
    }
    return !sink_->matching("checkouts/s over the last").empty();
  }));
  const std::string warning = sink_->matching("checkouts/s over the last").front();
  // Sampled ten times per window, the rate is over about one window.
  const double span = [&] {
    std::smatch m;
    return std::regex_search(warning, m, std::regex("over the last ([0-9.]+) s")) ? std::stod(m[1])
                                                                                  : -1.0;
  }();
  EXPECT_GE(span, 0) << warning;
  EXPECT_LT(span, 0.5) << warning;
}

TEST_F(TracerChurnRateTest, APoolAttachedAfterAnotherStartsItsRateHistoryAfresh) {
  TracerConfig tc = tracer_config();
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

TEST_F(TracerChurnRateTest, TheRateOptionFiresForABusySiteAndNotForAQuietOne) {
  Pool pool(db_.config(2));
  TracerConfig tc = tracer_config();
  tc.churn_threshold = 200;
  tc.churn_window = 200ms;
  Tracer tracer(pool, tc);

  const std::source_location quiet = std::source_location::current();
  for (int i = 0; i < 3; ++i) acquire_at(pool, quiet);
  const std::source_location busy = std::source_location::current();
  const auto until = Clock::now() + 700ms;
  while (Clock::now() < until) {
    Lease lease = acquire_at(pool, busy);
    std::this_thread::sleep_for(200us);
  }
  ASSERT_TRUE(eventually([&] { return !sink_->matching("checkouts/s").empty(); }))
      << ::testing::PrintToString(sink_->lines());
  const auto warnings = sink_->matching("Session churn at ");
  ASSERT_FALSE(warnings.empty());
  for (const std::string& w : warnings) {
    EXPECT_EQ(
        w.rfind("warning: Session churn at " + format_site(busy) + " (pool=" + pool.name() + "): ",
                0),
        0u)
        << w;
    EXPECT_NE(w.find("checkouts/s over the last"), std::string::npos) << w;
    EXPECT_NE(w.find("(churn_threshold 200/s)"), std::string::npos) << w;
    EXPECT_NE(w.find("Hold one lease around the loop"), std::string::npos) << w;
  }
  EXPECT_TRUE(sink_->matching("Session churn at " + format_site(quiet)).empty());
  // At most one warning per window: 0.7 s of churn is at most four windows.
  EXPECT_LE(warnings.size(), 5u);
  EXPECT_EQ(tracer.stats().churn_warnings, warnings.size());
}

}  // namespace
}  // namespace poolscope::tracing
