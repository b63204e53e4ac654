// Connection lifetime: max_lifetime, idle_timeout, validation, broken
// connections and shutdown.

#include <gtest/gtest.h>
#include <soci/soci.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "poolscope/pool/errors.h"
#include "poolscope/pool/pool.h"
#include "recording_observer.h"
#include "test_db.h"
#include "test_util.h"

namespace poolscope {
namespace {

using namespace std::chrono_literals;
using testing::eventually;
using testing::RecordingObserver;
using testing::TestBackend;
using testing::TestDatabase;

// Holds the first on_close for `reason` until unblock(), so that a test can
// keep a thread inside the pool at a known point.
class BlockingCloseObserver : public PoolObserver {
 public:
  explicit BlockingCloseObserver(CloseReason reason) : reason_(reason) {}
  unsigned events() const override { return kCloseEvents; }
  void on_close(const CloseEvent& e) override {
    if (e.reason != reason_ || blocked_.exchange(true)) return;
    entered_.set_value();
    released_.wait();
  }
  // True once a thread is held in on_close (waits up to 5 s).
  bool wait_entered() { return entered_future_.wait_for(5s) == std::future_status::ready; }
  void unblock() { release_.set_value(); }

 private:
  const CloseReason reason_;
  std::atomic<bool> blocked_{false};
  std::promise<void> entered_;
  std::future<void> entered_future_ = entered_.get_future();
  std::promise<void> release_;
  std::shared_future<void> released_ = release_.get_future().share();
};

class PoolLifecycleTest : public ::testing::TestWithParam<TestBackend> {
 protected:
  void SetUp() override { db_ = std::make_unique<TestDatabase>(GetParam()); }
  std::unique_ptr<TestDatabase> db_;
};

TEST_P(PoolLifecycleTest, MaxLifetimeClosesIdleConnections) {
  PoolConfig cfg = db_->config(2);
  cfg.max_lifetime = 150ms;
  cfg.housekeeping_interval = 20ms;
  Pool pool(cfg);
  std::uint64_t first = 0;
  {
    Lease lease = pool.acquire();
    first = lease.connection_id();
  }
  ASSERT_TRUE(eventually([&] { return pool.stats().closed_by(CloseReason::kMaxLifetime) == 1; }));
  EXPECT_EQ(pool.stats().open, 0u);
  Lease next = pool.acquire();
  EXPECT_NE(next.connection_id(), first);
}

TEST_P(PoolLifecycleTest, MaxLifetimeClosesABusyConnectionWhenItComesBack) {
  PoolConfig cfg = db_->config(2);
  cfg.max_lifetime = 100ms;
  Pool pool(cfg);
  {
    Lease lease = pool.acquire();
    std::this_thread::sleep_for(150ms);  // never idle: the housekeeper cannot take it
    EXPECT_EQ(pool.stats().closed_by(CloseReason::kMaxLifetime), 0u);
  }
  EXPECT_EQ(pool.stats().closed_by(CloseReason::kMaxLifetime), 1u);
  EXPECT_EQ(pool.stats().open, 0u);
}

TEST_P(PoolLifecycleTest, IdleTimeoutClosesIdleConnectionsDownToMinIdle) {
  PoolConfig cfg = db_->config(3);
  cfg.idle_timeout = 150ms;
  cfg.housekeeping_interval = 20ms;
  cfg.min_idle = 1;
  Pool pool(cfg);
  {
    Lease a = pool.acquire_new();
    Lease b = pool.acquire_new();
    Lease c = pool.acquire_new();
  }
  EXPECT_EQ(pool.stats().open, 3u);
  ASSERT_TRUE(eventually([&] { return pool.stats().closed_by(CloseReason::kIdleTimeout) == 2; }));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(pool.stats().open, 1u) << "min_idle keeps one connection";
  EXPECT_EQ(pool.stats().closed_by(CloseReason::kIdleTimeout), 2u);
}

TEST_P(PoolLifecycleTest, DestroyingThePoolReportsAndSurvivesAnOutstandingLease) {
  auto pool = std::make_unique<Pool>(db_->config(2));
  auto observer = std::make_shared<RecordingObserver>();
  Subscription subscription = pool->add_observer(observer);
  const std::uint_least32_t line = __LINE__ + 1;
  Lease leaked = pool->acquire();
  { Lease idle = pool->acquire_new(); }  // a second connection, idle at shutdown
  pool.reset();
  ASSERT_EQ(observer->shutdowns, 1);
  ASSERT_EQ(observer->shutdown_leases.size(), 1u);
  EXPECT_EQ(observer->shutdown_leases[0].site.line(), line);
  EXPECT_EQ(observer->closes, 1) << "the idle connection closes at once";
  // The lease still works and comes back safely; its connection is closed then.
  *leaked << "SELECT 1";
  leaked.release();
  EXPECT_EQ(observer->closes, 2);
  std::lock_guard lock(observer->mu);
  EXPECT_EQ(observer->close_reasons.back(), CloseReason::kShutdown);
}

TEST_P(PoolLifecycleTest, WaitersGetPoolClosedWhenThePoolIsDestroyed) {
  PoolConfig cfg = db_->config(1);
  cfg.checkout_timeout = 10s;
  auto pool = std::make_unique<Pool>(cfg);
  Lease holder = pool->acquire();
  std::promise<std::string> outcome;
  Pool* raw = pool.get();  // the unique_ptr itself is reset below
  std::thread waiter([&] {
    try {
      Lease lease = raw->acquire();
      outcome.set_value("got a lease");
    } catch (const PoolClosed& e) {
      outcome.set_value(e.what());
    }
  });
  ASSERT_TRUE(eventually([&] { return pool->stats().pending == 1; }));
  pool.reset();
  waiter.join();
  EXPECT_NE(outcome.get_future().get().find("closed while waiting"), std::string::npos);
  holder.release();
}

// Issue 10, bug 1: a lease released on one thread while another waits and
// the pool is destroyed on a third. The release publishes its connection
// idle and goes on reading the pool; ~Pool must not free it under the
// release. Looped, for ASan and TSan (scripts/sanitize.sh) to catch it.
TEST_P(PoolLifecycleTest, AReleaseRacingThePoolsDestructorWhileAThreadWaitsIsSafe) {
  PoolConfig cfg = db_->config(1);
  cfg.checkout_timeout = 5s;
  for (int round = 0; round < 100; ++round) {
    auto pool = std::make_unique<Pool>(cfg);
    Pool* raw = pool.get();
    auto lease = std::make_unique<Lease>(raw->acquire());
    std::thread waiter([raw] {
      try {
        Lease got = raw->acquire();
      } catch (const Error&) {
        // PoolClosed: the pool went first
      }
    });
    ASSERT_TRUE(eventually([&] { return raw->stats().pending == 1; }));
    std::thread releaser([&lease] { lease.reset(); });
    pool.reset();  // races the release
    releaser.join();
    waiter.join();
  }
}

// Issue 10, bug 2: a waiter whose deadline passes while ~Pool runs. Its
// on_timeout observers and its PoolTimeout text still read the pool, so
// ~Pool waits for it; the text is whole, never freed memory.
TEST_P(PoolLifecycleTest, AWaiterTimingOutWhileThePoolIsDestroyedGetsAWholeMessage) {
  class SlowTimeoutObserver : public PoolObserver {
   public:
    unsigned events() const override { return kTimeoutEvents; }
    void on_timeout(const TimeoutEvent&) override {
      entered = true;
      std::this_thread::sleep_for(300ms);
    }
    std::atomic<bool> entered{false};
  };
  PoolConfig cfg = db_->config(1);
  cfg.name = "bug2";
  cfg.checkout_timeout = 50ms;
  cfg.min_idle = 1;
  auto pool = std::make_unique<Pool>(cfg);
  auto observer = std::make_shared<SlowTimeoutObserver>();
  Subscription subscription = pool->add_observer(observer);
  auto holder = std::make_unique<Lease>(pool->acquire());
  Pool* raw = pool.get();
  std::string message;
  std::thread waiter([&] {
    try {
      Lease lease = raw->acquire();
    } catch (const std::exception& e) {
      message = e.what();
    }
  });
  ASSERT_TRUE(eventually([&] { return observer->entered.load(); }));
  pool.reset();    // while the waiter sits in on_timeout
  holder.reset();  // the last lease: the pool's internals go now, or when the waiter is done
  waiter.join();
  EXPECT_EQ(message.rfind("QueuePool limit of size 1 overflow 0 reached: pool 'bug2'", 0), 0u)
      << message;
  EXPECT_NE(message.find("waiting=1)"), std::string::npos) << message;
}

TEST_P(PoolLifecycleTest, ASlowOnCloseAtShutdownDoesNotHoldUpAReturningLease) {
  auto pool = std::make_unique<Pool>(db_->config(2));
  auto observer = std::make_shared<BlockingCloseObserver>(CloseReason::kShutdown);
  Subscription subscription = pool->add_observer(observer);
  Lease late = pool->acquire();
  { Lease idle = pool->acquire_new(); }  // idle at shutdown: the destructor closes it
  std::thread destroyer([&] { pool.reset(); });
  EXPECT_TRUE(observer->wait_entered());
  auto returned = std::async(std::launch::async, [&] { late.release(); });
  EXPECT_EQ(returned.wait_for(2s), std::future_status::ready)
      << "release() waited for the destructor's on_close";
  observer->unblock();
  destroyer.join();
  returned.wait();
}

TEST_P(PoolLifecycleTest, ASlowOnCloseOfALateReturnDoesNotHoldUpAnother) {
  auto pool = std::make_unique<Pool>(db_->config(2));
  auto observer = std::make_shared<BlockingCloseObserver>(CloseReason::kShutdown);
  Subscription subscription = pool->add_observer(observer);
  Lease first = pool->acquire();
  Lease second = pool->acquire_new();
  pool.reset();  // both leases still out
  std::thread returner([&] { first.release(); });
  EXPECT_TRUE(observer->wait_entered());
  auto returned = std::async(std::launch::async, [&] { second.release(); });
  EXPECT_EQ(returned.wait_for(2s), std::future_status::ready)
      << "release() waited for another release's on_close";
  observer->unblock();
  returner.join();
  returned.wait();
}

INSTANTIATE_TEST_SUITE_P(Backends, PoolLifecycleTest,
                         ::testing::Values(TestBackend::kSqlite, TestBackend::kPostgreSQL),
                         [](const auto& p) { return testing::backend_name(p.param); });

// The waiter a returning connection is handed to finds it fails validation;
// the pool is destroyed while the waiter replaces it, and the replacement
// cannot connect. SQLite: removing the database's directory makes it fail.
TEST(PoolShutdownTest, AValidationFailingAfterThePoolIsDestroyedThrowsPoolClosed) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("poolscope_reconnect_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  PoolConfig cfg;
  cfg.url = "sqlite://" + (dir / "app.db").string();
  cfg.name = "reconnect";
  cfg.pool_size = 1;
  cfg.max_overflow = 0;
  cfg.checkout_timeout = 10s;
  cfg.validation_interval = 0ms;
  cfg.validation_query = "SELECT no_such_column FROM no_such_table";  // every validation fails
  auto pool = std::make_unique<Pool>(cfg);
  auto observer = std::make_shared<BlockingCloseObserver>(CloseReason::kValidationFailed);
  Subscription subscription = pool->add_observer(observer);
  Lease holder = pool->acquire();
  Pool* raw = pool.get();  // the unique_ptr itself is reset below
  std::promise<std::string> outcome;
  std::thread waiter([&] {
    try {
      Lease lease = raw->acquire();
      outcome.set_value("got a lease");
    } catch (const std::exception& e) {
      outcome.set_value(e.what());
    }
  });
  EXPECT_TRUE(eventually([&] { return pool->stats().pending == 1; }));
  holder.release();  // handed to the waiter, whose validation closes it
  EXPECT_TRUE(observer->wait_entered());
  pool.reset();
  std::filesystem::remove_all(dir);
  observer->unblock();
  waiter.join();
  const std::string message = outcome.get_future().get();
  EXPECT_NE(message.find("pool 'reconnect' was closed"), std::string::npos) << message;
}

// Validation and broken connections need a server that can drop them.
class PoolPostgreSQLTest : public ::testing::Test {
 protected:
  TestDatabase db_{TestBackend::kPostgreSQL};
};

TEST_F(PoolPostgreSQLTest, ValidationDiscardsAConnectionKilledByPgTerminateBackend) {
  PoolConfig cfg = db_.config(1);
  cfg.validation_interval = 0ms;
  Pool pool(cfg);
  int before = 0;
  {
    Lease lease = pool.acquire();
    before = testing::pg_backend_pid(*lease);
  }
  testing::pg_terminate_backend(before);
  Lease lease = pool.acquire();
  const int after = testing::pg_backend_pid(*lease);
  EXPECT_NE(after, before);
  EXPECT_EQ(pool.stats().closed_by(CloseReason::kValidationFailed), 1u);
  EXPECT_EQ(pool.stats().open, 1u);
}

TEST_F(PoolPostgreSQLTest, ValidationIsSkippedForARecentlyUsedConnection) {
  PoolConfig cfg = db_.config(1);
  cfg.validation_interval = 60s;
  Pool pool(cfg);
  int before = 0;
  {
    Lease lease = pool.acquire();
    before = testing::pg_backend_pid(*lease);
  }
  testing::pg_terminate_backend(before);
  // Used within the interval: handed out without a round trip, so the
  // caller meets the dead connection, and the pool discards it on return.
  {
    Lease lease = pool.acquire();
    EXPECT_THROW(*lease << "SELECT 1", soci::soci_error);
  }
  EXPECT_EQ(pool.stats().closed_by(CloseReason::kBroken), 1u);
  EXPECT_EQ(pool.stats().closed_by(CloseReason::kValidationFailed), 0u);
  Lease lease = pool.acquire();
  EXPECT_NE(testing::pg_backend_pid(*lease), before);
}

TEST_F(PoolPostgreSQLTest, AFailedTransactionIsRolledBackNotHandedOn) {
  Pool pool(db_.config(1));
  {
    Lease sql = pool.acquire();
    sql->begin();
    EXPECT_THROW(*sql << "SELECT no_such_column FROM no_such_table", soci::soci_error);
  }
  EXPECT_EQ(pool.stats().rollbacks_on_return, 1u);
  Lease sql = pool.acquire();
  int one = 0;
  *sql << "SELECT 1", soci::into(one);  // would fail inside an aborted transaction
  EXPECT_EQ(one, 1);
}

}  // namespace
}  // namespace poolscope
