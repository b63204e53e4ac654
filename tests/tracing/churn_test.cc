// Churn found by its shape: the incidents' widget render (20 rows, 3 settings
// each) written the three ways poolscope-load writes it, at three render
// rates, and a busy endpoint; then the rate threshold, now an option.

#include <gtest/gtest.h>
#include <soci/soci.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "capturing_sink.h"
#include "poolscope/base/site.h"
#include "poolscope/cache/settings_cache.h"
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
using Clock = std::chrono::steady_clock;
using poolscope::testing::CapturingSink;
using poolscope::testing::eventually;
using poolscope::testing::TestBackend;
using poolscope::testing::TestDatabase;
using testing::acquire_at;
using testing::number_in;

constexpr int kAccounts = 5;
constexpr int kRows = 20;
const char* const kKeys[] = {"api_key", "api_secret", "paper_account"};

void seed(TestDatabase& db) {
  std::unique_ptr<soci::session> sql = db.open_session();
  *sql << "CREATE TABLE account_settings (account_id INTEGER NOT NULL, setting_key TEXT NOT "
          "NULL, setting_value TEXT NOT NULL, PRIMARY KEY (account_id, setting_key))";
  for (int account = 1; account <= kAccounts; ++account) {
    for (const std::string key : kKeys) {
      const std::string value = key + "-" + std::to_string(account);
      *sql << "INSERT INTO account_settings VALUES (:a, :k, :v)", soci::use(account),
          soci::use(key), soci::use(value);
    }
  }
}

// A settings read the way the incidents wrote it: a session of its own.
// Inside a render lease (reuse) its acquire() is a nested reuse.
[[gnu::noinline]] std::string read_setting(Pool& pool, int account, const std::string& key) {
  Lease sql = pool.acquire();
  std::string value;
  *sql << "SELECT setting_value FROM account_settings WHERE account_id = :a AND setting_key = :k",
      soci::use(account), soci::use(key), soci::into(value);
  return value;
}

// read_setting()'s line in the site table.
SiteStats read_site(const Tracer& tracer) {
  for (const SiteStats& s : tracer.sites()) {
    if (s.name.starts_with("tracing/churn_test.cc:read_setting():")) return s;
  }
  ADD_FAILURE() << "no read_setting() site";
  return {};
}

// A sanitizer slows the loop's own code between two leases (poolscope's
// release and acquire) many times over, past churn_gap (2 us); the loops
// are judged with a gap to match there. Plain builds use the default.
void sanitized_gap(TracerConfig& tc) {
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
  tc.churn_gap = std::chrono::microseconds(40);
#else
  (void)tc;
#endif
}

enum class Shape { kPool, kReuse, kCached };

// One render: 20 rows, each building an account from its three settings.
std::size_t build_accounts(Shape shape, Pool& pool, cache::SettingsCache& cache) {
  std::size_t bytes = 0;
  for (int row = 0; row < kRows; ++row) {
    const int account = row % kAccounts + 1;
    for (const char* key : kKeys) {
      bytes += shape == Shape::kCached ? cache.get<std::string>(account, key).size()
                                       : read_setting(pool, account, key).size();
    }
  }
  return bytes;
}

[[gnu::noinline]] std::size_t render(Shape shape, Pool& pool, cache::SettingsCache& cache) {
  if (shape != Shape::kReuse) return build_accounts(shape, pool, cache);
  // One lease for the render, held unmoved: the reads' acquire() share it.
  const Lease render_lease = pool.acquire();
  return build_accounts(shape, pool, cache);
}

struct ShapeAtRate {
  Shape shape;
  std::chrono::milliseconds pause;  // between renders: 0 renders back to back
};

std::string shape_name(const ::testing::TestParamInfo<ShapeAtRate>& p) {
  const char* shape = p.param.shape == Shape::kPool    ? "PoolLeasePerRead"
                      : p.param.shape == Shape::kReuse ? "ReuseRenderLease"
                                                       : "CachedSettings";
  return std::string(shape) + "Pause" + std::to_string(p.param.pause.count()) + "ms";
}

class TracerChurnShapeTest : public ::testing::TestWithParam<ShapeAtRate> {
 protected:
  void SetUp() override {
    std::tie(logger_, sink_) = CapturingSink::logger("churn");
    seed(db_);
  }
  TestDatabase db_{TestBackend::kSqlite};
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<CapturingSink> sink_;
};

// Renders for a second at the parameter's rate: a lease per read must be
// reported (once, naming read_setting() and the loop), the two fixes never,
// with the tracer's defaults (only the logger and a faster round are set).
TEST_P(TracerChurnShapeTest, OnlyALeasePerReadIsReportedAtAnyRenderRate) {
  Pool pool(db_.config(2));
  TracerConfig tc;
  tc.logger = logger_;
  tc.churn_window = 1s;  // detection rounds every 100 ms
  sanitized_gap(tc);
  Tracer tracer(pool, tc);
  cache::SettingsCache cache(
      pool, {.name = "account_settings",
             .table = {"account_settings", "account_id", "setting_key", "setting_value"}});
  const ShapeAtRate p = GetParam();
  std::size_t renders = 0;
  for (const auto until = Clock::now() + 1s; Clock::now() < until; ++renders) {
    ASSERT_GT(render(p.shape, pool, cache), 0u);
    if (p.pause.count() > 0) std::this_thread::sleep_for(p.pause);
  }
  ASSERT_GE(renders, p.pause.count() > 0 ? 5u : 100u) << "the machine is too slow for the test";
  const double rate = static_cast<double>(renders);  // per second
  if (p.shape == Shape::kPool) {
    ASSERT_TRUE(eventually([&] { return tracer.stats().churn_warnings > 0; }))
        << ::testing::PrintToString(sink_->lines());
    std::this_thread::sleep_for(300ms);  // a few more rounds: still one report
    const auto warnings = sink_->matching("Session churn at ");
    ASSERT_EQ(warnings.size(), 1u) << ::testing::PrintToString(warnings);
    const std::string& w = warnings[0];
    EXPECT_EQ(w.rfind("warning: Session churn at tracing/churn_test.cc:read_setting():", 0), 0u)
        << w;
    EXPECT_NE(w.find("(pool=" + pool.name() + "): "), std::string::npos) << w;
    const long long loop =
        number_in(w, "\\): a loop took ([0-9]+) leases here in a row on thread ");
    if (p.pause.count() > 0) {
      // One render, one loop. After a long pause the render starts on cold
      // caches: its first gap can pass churn_gap, and the loop starts at
      // the second read.
      EXPECT_GE(loop, kRows * 3 - 1) << "one render, one loop: " << w;
      EXPECT_LE(loop, kRows * 3) << "one render, one loop: " << w;
    } else {
      EXPECT_GE(loop, kRows * 3) << "renders back to back make one long loop: " << w;
    }
    EXPECT_NE(w.find("; churn_loop 20) [Called from: tracing/churn_test.cc:read_setting():"),
              std::string::npos)
        << w;
    EXPECT_NE(w.find("Hold one lease around the loop"), std::string::npos) << w;
    EXPECT_GE(read_site(tracer).churn_loops, 1u);
  } else {
    std::this_thread::sleep_for(300ms);  // three rounds after the last render
    EXPECT_TRUE(sink_->matching("Session churn").empty())
        << rate << " renders/s: " << ::testing::PrintToString(sink_->matching("Session churn"));
    EXPECT_EQ(tracer.stats().churn_warnings, 0u);
  }
  std::cout << shape_name({p, 0}) << ": " << rate << " renders/s, " << tracer.stats().churn_warnings
            << " churn warnings\n";
}

INSTANTIATE_TEST_SUITE_P(
    Renders, TracerChurnShapeTest,
    ::testing::Values(ShapeAtRate{Shape::kPool, 0ms}, ShapeAtRate{Shape::kPool, 2ms},
                      ShapeAtRate{Shape::kPool, 20ms}, ShapeAtRate{Shape::kReuse, 0ms},
                      ShapeAtRate{Shape::kReuse, 2ms}, ShapeAtRate{Shape::kReuse, 20ms},
                      ShapeAtRate{Shape::kCached, 0ms}, ShapeAtRate{Shape::kCached, 2ms},
                      ShapeAtRate{Shape::kCached, 20ms}),
    shape_name);

class TracerChurnTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::tie(logger_, sink_) = CapturingSink::logger("churn");
    seed(db_);
  }
  TracerConfig tracer_config() {
    TracerConfig tc;
    tc.logger = logger_;
    tc.churn_window = 1s;  // rounds every 100 ms
    sanitized_gap(tc);
    return tc;
  }
  TestDatabase db_{TestBackend::kSqlite};
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<CapturingSink> sink_;
};

// A request/response endpoint at 10,000 requests a second: two clients each
// send 5,000 requests a second over a socket (at once when they fall behind,
// so a worker then drains a backlog back to back); a worker reads a request,
// takes one lease for its query, builds the response and sends it. Never
// churn, however the requests bunch up.
TEST_F(TracerChurnTest, ABusyEndpointWithOneAcquirePerRequestIsNotChurn) {
  Pool pool(db_.config(2));
  Tracer tracer(pool, tracer_config());
  constexpr int kWorkers = 2;
  constexpr auto kPeriod = 200us;  // per client
  constexpr std::size_t kRequest = 32;
  int fds[kWorkers][2];
  for (auto& f : fds) ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, f), 0);
  std::atomic<std::uint64_t> served{0};
  auto worker = [&](int w) {
    char request[kRequest];
    while (::recv(fds[w][1], request, kRequest, MSG_WAITALL) == static_cast<ssize_t>(kRequest)) {
      // "GET /accounts/3/settings/api_key"
      const std::string_view text(request, kRequest);
      const int account = text[14] - '0';
      const std::string key(text.substr(text.rfind('/') + 1));
      const std::string value = read_setting(pool, account, key);
      std::string response = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{";
      response +=
          "\"account\": " + std::to_string(account) + ", \"" + key + "\": \"" + value + "\"}";
      if (::send(fds[w][1], response.data(), response.size(), MSG_NOSIGNAL) < 0) break;
      served.fetch_add(1, std::memory_order_relaxed);
    }
    ::shutdown(fds[w][1], SHUT_WR);  // the client's end of the conversation
  };
  const auto start = Clock::now();
  auto client = [&](int w) {
    char drain[4096];
    auto next = start;
    for (int i = 0; next < start + 2s; ++i, next += kPeriod) {
      std::this_thread::sleep_until(next);
      char request[kRequest + 1];
      std::snprintf(request, sizeof request, "GET /accounts/%d/settings/api_key",
                    i % kAccounts + 1);
      ASSERT_EQ(::send(fds[w][0], request, kRequest, MSG_NOSIGNAL), static_cast<ssize_t>(kRequest));
      while (::recv(fds[w][0], drain, sizeof drain, MSG_DONTWAIT) > 0) {
      }
    }
    ::shutdown(fds[w][0], SHUT_WR);
    while (::recv(fds[w][0], drain, sizeof drain, 0) > 0) {
    }
  };
  std::vector<std::thread> threads;
  for (int w = 0; w < kWorkers; ++w) {
    threads.emplace_back(worker, w);
    threads.emplace_back(client, w);
  }
  for (std::thread& t : threads) t.join();
  for (auto& f : fds) {
    ::close(f[0]);
    ::close(f[1]);
  }
  const double per_second = static_cast<double>(served.load()) /
                            std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_GT(served.load(), 1'000u) << "the endpoint served requests";
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(read_site(tracer).acquires, served.load()) << "one checkout per request, each counted";
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
  // The shape is time inside a lease against time between leases. A
  // sanitizer slows poolscope's own atomics inside the lease many times
  // over, but not the socket calls between leases, so a backlog drained
  // here looks like a loop that the shipped build never shows. The shape
  // is judged in plain builds (both of CI's); here the run checks races,
  // memory and the counts.
  const bool judge_shape = false;
#else
  const bool judge_shape = true;
#endif
  if (judge_shape) {
    // Only a busy endpoint makes the verdict worth having (and only a plain
    // build is sure to be this busy on two shared cores).
    EXPECT_GE(per_second, 8'000) << "the endpoint was not busy enough for the test";
    EXPECT_TRUE(sink_->matching("Session churn").empty())
        << per_second
        << " requests/s: " << ::testing::PrintToString(sink_->matching("Session churn"));
    EXPECT_EQ(tracer.stats().churn_warnings, 0u);
  }
  std::cout << per_second << " requests/s, " << tracer.stats().churn_warnings
            << " churn warnings\n";
}

// A loop whose leases are far apart (work between them), a little apart but
// held shorter than eight times the gap, or held long (as by a preempted
// worker) with a few microseconds between (a drained backlog's socket
// calls), is not a churn loop.
TEST_F(TracerChurnTest, ALoopWithWorkBetweenItsLeasesIsNotChurn) {
  Pool pool(db_.config(2));
  Tracer tracer(pool, tracer_config());
  const std::source_location far = std::source_location::current();
  for (int i = 0; i < 60; ++i) {
    {
      Lease lease = acquire_at(pool, far);
    }
    std::this_thread::sleep_for(2ms);  // far past churn_gap (2 us)
  }
  const std::source_location near = std::source_location::current();
  for (int i = 0; i < 200; ++i) {
    {
      Lease lease = acquire_at(pool, near);
    }  // held for well under a microsecond or so
    for (const auto until = Clock::now() + 50us; Clock::now() < until;) {
    }
  }
  const std::source_location backlog = std::source_location::current();
  const auto gap = 3 * tracer_config().churn_gap;  // 6 us in plain builds
  for (int i = 0; i < 60; ++i) {
    {
      Lease lease = acquire_at(pool, backlog);
      for (const auto until = Clock::now() + 40 * gap; Clock::now() < until;) {
      }
    }  // the gap: 1/40 of the hold, but past churn_gap
    for (const auto until = Clock::now() + gap; Clock::now() < until;) {
    }
  }
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(sink_->matching("Session churn").empty())
      << ::testing::PrintToString(sink_->matching("Session churn"));
}

// Reported once while it goes on, again after churn_quiet without a loop.
TEST_F(TracerChurnTest, ASiteIsReportedAgainOnlyAfterAQuietPeriod) {
  Pool pool(db_.config(2));
  TracerConfig tc = tracer_config();
  tc.churn_quiet = 400ms;
  Tracer tracer(pool, tc);
  cache::SettingsCache unused(pool);
  auto loop_for = [&](std::chrono::milliseconds d) {
    for (const auto until = Clock::now() + d; Clock::now() < until;)
      render(Shape::kPool, pool, unused);
  };
  loop_for(300ms);
  ASSERT_TRUE(eventually([&] { return tracer.stats().churn_warnings == 1; }));
  loop_for(600ms);  // still churning: no second report
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(tracer.stats().churn_warnings, 1u);
  std::this_thread::sleep_for(600ms);  // quiet for longer than churn_quiet
  EXPECT_EQ(tracer.stats().churn_warnings, 1u);
  loop_for(100ms);
  EXPECT_TRUE(eventually([&] { return tracer.stats().churn_warnings == 2; }));
  EXPECT_EQ(sink_->matching("Session churn at ").size(), 2u);
  EXPECT_GE(read_site(tracer).churn_loops, 2u);
}

[[gnu::noinline]] void settings_loop(Pool& pool) {
  for (int i = 0; i < 30; ++i) read_setting(pool, 1, "api_key");
}

TEST_F(TracerChurnTest, WithStacksTheReportNamesTheLoopsCallers) {
  Pool pool(db_.config(2));
  TracerConfig tc = tracer_config();
  tc.capture_stacks = true;
  Tracer tracer(pool, tc);
  // Loops of 30 apart from each other (one a preempted thread broke is
  // followed by another).
  ASSERT_TRUE(eventually([&] {
    settings_loop(pool);
    std::this_thread::sleep_for(5ms);
    return tracer.stats().churn_warnings == 1;
  }));
  const std::string w = sink_->matching("Session churn at ")[0];
  const long long loop = number_in(w, "a loop took ([0-9]+) leases here in a row");
  EXPECT_GE(loop, 20) << w;
  EXPECT_LE(loop, 30) << w;
  EXPECT_NE(w.find("[Called from: tracing/churn_test.cc:read_setting():"), std::string::npos) << w;
  EXPECT_NE(w.find(POOLSCOPE_TEST_DEBUG_INFO ? " <- tracing/churn_test.cc:settings_loop():"
                                             : " <- tracing::settings_loop()+0x"),
            std::string::npos)
      << "the loop's own frame: " << w;
}

}  // namespace
}  // namespace poolscope::tracing
