// What the tracer writes to the log besides the session lines: checkout
// timeouts summed up under a storm, and foreign text (file names from #line,
// thread names) escaped so that every line stays one line.

#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "capturing_sink.h"
#include "foreign_text.h"
#include "poolscope/base/site.h"
#include "poolscope/pool/errors.h"
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
using testing::number_in;

// try_acquire(0ms) from a thread that holds no lease of the pool (on one
// that does, it is a nested reuse and never times out).
bool times_out_elsewhere(Pool& pool) {
  bool timed_out = false;
  std::thread([&] { timed_out = !pool.try_acquire(0ms).has_value(); }).join();
  return timed_out;
}

class TracerLogTest : public ::testing::Test {
 protected:
  void SetUp() override { std::tie(logger_, sink_) = CapturingSink::logger("tracer-log"); }
  TestDatabase db_{TestBackend::kSqlite};
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<CapturingSink> sink_;
};

// Four threads hammer an exhausted pool for 1.2 s: tens of thousands of
// timeouts, a handful of lines. The first at once, then one per 200 ms
// interval, whose counts add up to every timeout.
TEST_F(TracerLogTest, AStormOfTimeoutsIsOneLineThenOneSummaryPerInterval) {
  Pool pool(db_.config(1));
  TracerConfig tc;
  tc.logger = logger_;
  tc.timeout_log_interval = 200ms;
  Tracer tracer(pool, tc);
  Lease holder = pool.acquire();
  std::vector<std::thread> threads;
  const auto until = Clock::now() + 1200ms;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      while (Clock::now() < until) EXPECT_FALSE(pool.try_acquire(0ms).has_value());
    });
  }
  for (std::thread& t : threads) t.join();
  // An interval without timeouts ends the storm with its last summary.
  ASSERT_TRUE(eventually([&] {
    return !sink_->matching("checkout timeouts in the last").empty() &&
           tracer.stats().timeout_lines ==
               1 + sink_->matching("checkout timeouts in the last").size();
  }));
  std::this_thread::sleep_for(500ms);
  const std::uint64_t timeouts = pool.stats().timeouts;
  ASSERT_GE(timeouts, 1000u) << "not a storm";
  const auto first = sink_->matching("Checkout timed out");
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].rfind("warning: Checkout timed out after ", 0), 0u) << first[0];
  EXPECT_NE(first[0].find("further timeouts are summed up every 200.0 ms"), std::string::npos);
  const auto summaries = sink_->matching("checkout timeouts in the last");
  EXPECT_GE(summaries.size(), 4u) << ::testing::PrintToString(summaries);
  EXPECT_LE(summaries.size(), 8u) << ::testing::PrintToString(summaries);
  std::uint64_t summed = 1;
  for (const std::string& s : summaries) {
    const long long n = number_in(s, "^warning: ([0-9]+) checkout timeouts in the last ");
    ASSERT_GT(n, 0) << s;
    summed += static_cast<std::uint64_t>(n);
    // Every timeout came from one site, the try_acquire() above.
    EXPECT_NE(s.find("(pool=" + pool.name() + "), top sites: tracing/tracer_log_test.cc:"),
              std::string::npos)
        << s;
    EXPECT_NE(s.find(" (" + std::to_string(n) + ")"), std::string::npos) << s;
  }
  EXPECT_EQ(summed, timeouts);
  EXPECT_EQ(tracer.stats().timeout_lines, 1 + summaries.size());
  EXPECT_LT(sink_->lines().size(), 20u);
  // The storm is over: the next timeout is logged at once.
  EXPECT_TRUE(times_out_elsewhere(pool));
  EXPECT_EQ(sink_->matching("Checkout timed out").size(), 2u);
}

TEST_F(TracerLogTest, TimeoutsStillUnsummedAreLoggedWhenTheTracerGoes) {
  Pool pool(db_.config(1));
  Lease holder = pool.acquire();
  {
    TracerConfig tc;
    tc.logger = logger_;
    tc.timeout_log_interval = 1h;
    Tracer tracer(pool, tc);
    for (int i = 0; i < 5; ++i) EXPECT_TRUE(times_out_elsewhere(pool));
    EXPECT_EQ(sink_->matching("checkout timeouts").size(), 0u);
  }
  const auto summaries = sink_->matching("checkout timeouts in the last");
  ASSERT_EQ(summaries.size(), 1u) << ::testing::PrintToString(sink_->lines());
  EXPECT_EQ(summaries[0].rfind("warning: 4 checkout timeouts in the last ", 0), 0u) << summaries[0];
}

// Every line stays one line: a #line file name with a newline and a tab, and
// a thread name with a tab, come out escaped wherever they appear.
TEST_F(TracerLogTest, ControlCharactersInForeignTextAreEscaped) {
  PoolConfig pc = db_.config(1);
  pc.checkout_timeout = 50ms;
  Pool pool(pc);
  TracerConfig tc;
  tc.logger = logger_;
  tc.leak_threshold = 50ms;
  Tracer tracer(pool, tc);
  const std::string site = "gen/evil\\nname\\t.cc:acquire():7";
  std::atomic<bool> done{false};
  std::thread holder([&] {
    pthread_setname_np(pthread_self(), "evil\tthread");
    Lease held = foreign::acquire(pool);
    while (!done.load()) std::this_thread::sleep_for(1ms);
  });
  ASSERT_TRUE(eventually([&] { return !sink_->matching("Possible session leak").empty(); }));
  try {
    pool.acquire();
    ADD_FAILURE() << "no timeout";
  } catch (const PoolTimeout& e) {
    // The pool's own message names the holder the same way.
    EXPECT_NE(std::string(e.what()).find(site), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
  }
  done = true;
  holder.join();
  ASSERT_FALSE(sink_->matching("Database session created").empty());
  EXPECT_NE(sink_->matching("Database session created")[0].find("[Called from: " + site + "]"),
            std::string::npos)
      << sink_->matching("Database session created")[0];
  EXPECT_NE(sink_->matching("Possible session leak")[0].find("by " + site + " on thread "),
            std::string::npos);
  EXPECT_NE(sink_->matching("Possible session leak")[0].find("(evil\\tthread)"), std::string::npos)
      << sink_->matching("Possible session leak")[0];
  EXPECT_NE(tracer.sites()[0].name.find(site), std::string::npos) << tracer.sites()[0].name;
  for (const std::string& line : sink_->lines()) {
    for (const char c : line) {
      EXPECT_TRUE(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f)
          << "control character " << int(c) << " in: " << line;
    }
  }
}

}  // namespace
}  // namespace poolscope::tracing
