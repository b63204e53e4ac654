// Leak reports and caller chains: what a user reads when a lease is held too
// long, and where it came from.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <thread>
#include <vector>

#include "capturing_sink.h"
#include "no_debug_info.h"
#include "poolscope/base/site.h"
#include "poolscope/tracing/tracer.h"
#include "test_db.h"
#include "test_util.h"
#include "tracing_test_util.h"

#ifndef POOLSCOPE_TEST_DEBUG_INFO
#error "POOLSCOPE_TEST_DEBUG_INFO must be defined by the build"
#endif

namespace poolscope::tracing {
namespace {

using namespace std::chrono_literals;
using poolscope::testing::CapturingSink;
using poolscope::testing::eventually;
using poolscope::testing::TestBackend;
using poolscope::testing::TestDatabase;
using testing::Rendezvous;

class TracerLeakTest : public ::testing::Test {
 protected:
  void SetUp() override { std::tie(logger_, sink_) = CapturingSink::logger("tracer-leak"); }
  TestDatabase db_{TestBackend::kSqlite};
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<CapturingSink> sink_;
};

TEST_F(TracerLeakTest, ALeaseReturnedWhileItsLeakIsReportedIsStillLoggedAsReturned) {
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

TEST_F(TracerLeakTest, ACheckinDoesNotWaitForALeakReportBeingWritten) {
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

[[gnu::noinline]] Lease open_for_account(Pool& pool) { return pool.acquire(); }

// The first caller of the site in open_for_account(): this test body, named
// from the debug information or, in a build without it, the symbol table.
const char* const kTestBodyCaller =
    POOLSCOPE_TEST_DEBUG_INFO ? " <- tracing/tracer_leak_test.cc:TestBody():" : "::TestBody()+0x";

TEST_F(TracerLeakTest, StackCaptureAddsTheCallerChain) {
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
  EXPECT_NE(created[0].find("[Called from: tracing/tracer_leak_test.cc:open_for_account():"),
            std::string::npos)
      << created[0];
  EXPECT_NE(created[0].find(kTestBodyCaller), std::string::npos) << created[0];
  // The leak report carries the same chain, on its one line.
  ASSERT_TRUE(eventually([&] { return !sink_->matching("Possible session leak").empty(); }));
  const std::string leak = sink_->matching("Possible session leak")[0];
  EXPECT_NE(leak.find("[Called from: tracing/tracer_leak_test.cc:open_for_account():"),
            std::string::npos)
      << leak;
  EXPECT_NE(leak.find(kTestBodyCaller), std::string::npos) << leak;
  EXPECT_EQ(leak.find('\n'), std::string::npos) << leak;
}

TEST_F(TracerLeakTest, WithoutStackCaptureTheLineHasOnlyTheSite) {
  Pool pool(db_.config(2));
  TracerConfig tc;
  tc.logger = logger_;
  Tracer tracer(pool, tc);
  Lease lease = open_for_account(pool);
  const auto created = sink_->matching("Database session created");
  ASSERT_EQ(created.size(), 1u);
  EXPECT_NE(created[0].find("[Called from: tracing/tracer_leak_test.cc:open_for_account():"),
            std::string::npos);
  EXPECT_EQ(created[0].find(" <- "), std::string::npos) << created[0];
}

// A caller without debug information (as in a Release build) is named from
// the symbol table, and each log says once how to get file:line.
TEST_F(TracerLeakTest, ACallerWithoutDebugInfoIsNamedBySymbolAndTheFixIsLoggedOnce) {
  Pool pool(db_.config(4));
  TracerConfig tc;
  tc.logger = logger_;
  tc.capture_stacks = true;
  Tracer tracer(pool, tc);
  Lease first = nodebug::call(pool, open_for_account);
  Lease second = pool.acquire_new();  // another connection, another session line
  Lease third = nodebug::call(pool, [](Pool& p) { return p.acquire_new(); });
  const auto created = sink_->matching("Database session created");
  ASSERT_EQ(created.size(), 3u);
  EXPECT_NE(created[0].find(" <- nodebug::call()+0x"), std::string::npos) << created[0];
  EXPECT_EQ(created[0].find("no debug info"), std::string::npos) << created[0];
  Tracer second_tracer(pool, tc);  // another tracer on the same log: still once
  Lease fourth = nodebug::call(pool, [](Pool& p) { return p.acquire_new(); });
  const auto hints = sink_->matching("compile with -g1");
  ASSERT_EQ(hints.size(), 1u) << ::testing::PrintToString(sink_->lines());
  EXPECT_EQ(hints[0],
            "info: poolscope: caller frames show function+offset, not file:line, because the "
            "binary has no debug information; compile with -g1 (line tables only: no run-time "
            "cost) to get file:line");
}

}  // namespace
}  // namespace poolscope::tracing
