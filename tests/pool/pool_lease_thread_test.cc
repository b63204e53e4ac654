// Leases moved and handed between threads: a move keeps the one checkout,
// a lease returned on another thread goes back there, and a lease used on
// another thread is never shared with the first thread's nested acquires.

#include <gtest/gtest.h>
#include <soci/soci.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <thread>

#include "poolscope/pool/pool.h"
#include "test_db.h"

namespace poolscope {
namespace {

using namespace std::chrono_literals;
using testing::TestBackend;
using testing::TestDatabase;

class PoolLeaseThreadTest : public ::testing::TestWithParam<TestBackend> {
 protected:
  void SetUp() override { db_ = std::make_unique<TestDatabase>(GetParam()); }
  PoolConfig config(std::size_t pool_size) const { return db_->config(pool_size, 0); }

  std::unique_ptr<TestDatabase> db_;
};

TEST_P(PoolLeaseThreadTest, LeaseMovesKeepOneCheckout) {
  Pool pool(config(2));
  Lease a = pool.acquire();
  Lease b = std::move(a);
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  EXPECT_TRUE(b);
  Lease c;
  c = std::move(b);
  EXPECT_EQ(pool.stats().active, 1u);
  c = pool.acquire_new();  // assigning releases the old checkout first
  EXPECT_EQ(pool.stats().active, 1u);
  c.release();
  EXPECT_EQ(pool.stats().active, 0u);
}

TEST_P(PoolLeaseThreadTest, LeaseHandedToAnotherThreadIsReturnedThere) {
  Pool pool(config(1));
  Lease lease = pool.acquire();
  std::thread([moved = std::move(lease)]() mutable {
    *moved << "SELECT 1";
    moved.release();
  }).join();
  EXPECT_EQ(pool.stats().active, 0u);
  // This thread's stale reuse record must not hand out the returned connection.
  Lease again = pool.acquire();
  EXPECT_FALSE(again.reused());
}

TEST_P(PoolLeaseThreadTest, TheThreadCheckoutCounterCountsPhysicalCheckoutsOnly) {
  Pool pool(config(2));
  const std::uint64_t before = checkouts_on_this_thread();
  {
    Lease outer = pool.acquire();
    Lease nested = pool.acquire();  // a reuse, not a checkout
    Lease second = pool.acquire_new();
  }
  EXPECT_EQ(checkouts_on_this_thread() - before, 2u);
  std::thread([&] { Lease elsewhere = pool.acquire(); }).join();
  EXPECT_EQ(checkouts_on_this_thread() - before, 2u) << "other threads count for themselves";
}

TEST_P(PoolLeaseThreadTest, ALeaseUsedOnAnotherThreadIsNotSharedWithTheFirstThreadsNestedAcquires) {
  Pool pool(config(2));
  Lease outer = pool.acquire();
  const std::uint64_t moved_id = outer.connection_id();
  std::promise<void> used;
  std::promise<void> done;
  std::thread user([lease = std::move(outer), &used, done = done.get_future()]() mutable {
    *lease << "SELECT 1";  // the first use here takes the sharing along
    used.set_value();
    done.wait();  // keeps the lease while the main thread acquires
    *lease << "SELECT 1";
  });
  used.get_future().wait();
  Lease mine = pool.acquire();
  EXPECT_FALSE(mine.reused()) << "shares a session another thread is using";
  EXPECT_NE(mine.connection_id(), moved_id);
  EXPECT_EQ(pool.stats().active, 2u);
  *mine << "SELECT 1";
  done.set_value();
  user.join();
}

// A nested acquire taken before the other thread's first use shares the
// session: that first use waits until it comes back, so the two threads
// never use the session at once (this test runs under TSan too).
TEST_P(PoolLeaseThreadTest, AHandedOverLeaseWaitsForTheFirstThreadsNestedLeaseBeforeItsFirstUse) {
  Pool pool(config(2));
  Lease outer = pool.acquire();
  std::optional<Lease> nested;
  std::atomic<bool> nested_taken{false};
  std::atomic<bool> nested_released{false};
  std::atomic<bool> user_used{false};
  std::thread user(
      [lease = std::move(outer), &nested_taken, &nested_released, &user_used]() mutable {
        while (!nested_taken.load()) std::this_thread::yield();
        *lease << "SELECT 1";
        EXPECT_TRUE(nested_released.load()) << "used the session while the nested lease was out";
        user_used = true;
      });
  nested.emplace(pool.acquire());  // before the user's first use: shared
  nested_taken = true;
  EXPECT_TRUE(nested->reused());
  for (int i = 0; i < 20; ++i) **nested << "SELECT 1";
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(user_used.load()) << "the user thread did not wait";
  nested_released = true;
  nested.reset();
  user.join();
  EXPECT_TRUE(user_used.load());
  Lease after = pool.acquire();
  EXPECT_FALSE(after.reused());
}

TEST_P(PoolLeaseThreadTest, ALeaseFromTryAcquireIsSharedWithNestedAcquires) {
  Pool pool(config(1));
  std::optional<Lease> outer = pool.try_acquire(5s);
  ASSERT_TRUE(outer.has_value());
  Lease inner = pool.acquire();
  EXPECT_TRUE(inner.reused());
  EXPECT_EQ(inner.connection_id(), outer->connection_id());
}

INSTANTIATE_TEST_SUITE_P(Backends, PoolLeaseThreadTest,
                         ::testing::Values(TestBackend::kSqlite, TestBackend::kPostgreSQL),
                         [](const auto& p) { return testing::backend_name(p.param); });

}  // namespace
}  // namespace poolscope
