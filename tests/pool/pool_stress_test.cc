// Many threads hammering a small pool: the invariants a user relies on hold
// throughout, and nothing is lost at the end.

#include <gtest/gtest.h>
#include <soci/soci.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include "poolscope/pool/pool.h"
#include "recording_observer.h"
#include "test_db.h"

namespace poolscope {
namespace {

using namespace std::chrono_literals;
using testing::RecordingObserver;
using testing::TestBackend;
using testing::TestDatabase;

class PoolStressTest : public ::testing::TestWithParam<TestBackend> {};

TEST_P(PoolStressTest, ThirtyTwoThreadsOnAFourPlusFourPoolKeepTheInvariants) {
  TestDatabase db(GetParam());
  PoolConfig cfg = db.config(4, 4);
  cfg.checkout_timeout = 30s;
  cfg.validation_interval = 1ms;  // exercise validation under load too
  Pool pool(cfg);
  auto observer = std::make_shared<RecordingObserver>();
  Subscription subscription = pool.add_observer(observer);

  constexpr int kThreads = 32;
  const auto duration = 2s;
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> outer_leases{0}, nested_leases{0}, queries{0}, errors{0};
  std::atomic<std::size_t> max_open_seen{0}, max_active_seen{0};

  std::thread sampler([&] {
    while (!stop.load()) {
      const PoolStats s = pool.stats();
      max_open_seen = std::max<std::size_t>(max_open_seen, s.open);
      max_active_seen = std::max<std::size_t>(max_active_seen, s.active);
      std::this_thread::sleep_for(1ms);
    }
  });
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&, t] {
      std::minstd_rand rng(t);
      while (!stop.load(std::memory_order_relaxed)) {
        try {
          Lease lease = pool.acquire();
          outer_leases.fetch_add(1);
          int one = 0;
          *lease << "SELECT 1", soci::into(one);
          queries.fetch_add(one);
          if (rng() % 3 == 0) {
            Lease nested = pool.acquire();
            nested_leases.fetch_add(1);
            if (&*nested != &*lease) errors.fetch_add(1);
          }
          if (rng() % 4 == 0) std::this_thread::sleep_for(std::chrono::microseconds(rng() % 300));
        } catch (const std::exception& e) {
          errors.fetch_add(1);
          ADD_FAILURE() << e.what();
        }
      }
    });
  }
  std::this_thread::sleep_for(duration);
  stop = true;
  for (std::thread& w : workers) w.join();
  sampler.join();

  const PoolStats s = pool.stats();
  EXPECT_EQ(errors.load(), 0u);
  EXPECT_GT(outer_leases.load(), 100u);
  EXPECT_LE(max_open_seen.load(), 8u);
  EXPECT_LE(max_active_seen.load(), 8u);
  EXPECT_LE(observer->max_open.load(), 8) << "more connections open at once than size + overflow";
  // Nothing lost: every lease came back, every connection is accounted for.
  EXPECT_EQ(s.active, 0u);
  EXPECT_EQ(s.pending, 0u);
  EXPECT_EQ(s.open, s.idle);
  EXPECT_LE(s.open, 8u);
  EXPECT_EQ(s.acquires, outer_leases.load());
  EXPECT_EQ(s.reuses, nested_leases.load());
  EXPECT_EQ(static_cast<std::uint64_t>(observer->checkouts), s.acquires);
  EXPECT_EQ(static_cast<std::uint64_t>(observer->checkins), s.acquires);
  EXPECT_EQ(s.connections_opened - s.closed_total(), s.open);
  EXPECT_EQ(observer->open_now.load(), static_cast<int>(s.open));
  EXPECT_EQ(s.timeouts, 0u);
  EXPECT_EQ(queries.load(), outer_leases.load());
}

INSTANTIATE_TEST_SUITE_P(Backends, PoolStressTest,
                         ::testing::Values(TestBackend::kSqlite, TestBackend::kPostgreSQL),
                         [](const auto& p) { return testing::backend_name(p.param); });

}  // namespace
}  // namespace poolscope
