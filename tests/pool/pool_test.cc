// Pool behaviour a user observes, on SQLite and on PostgreSQL.

#include "poolscope/pool/pool.h"

#include <gtest/gtest.h>
#include <soci/soci.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "poolscope/base/site.h"
#include "poolscope/pool/errors.h"
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

class PoolTest : public ::testing::TestWithParam<TestBackend> {
 protected:
  void SetUp() override { db_ = std::make_unique<TestDatabase>(GetParam()); }

  PoolConfig config(std::size_t pool_size = 2, std::size_t max_overflow = 0) const {
    return db_->config(pool_size, max_overflow);
  }

  std::unique_ptr<TestDatabase> db_;
};

TEST_P(PoolTest, LeaseIsARealSociSession) {
  Pool pool(config());
  const std::uint_least32_t line = __LINE__ + 1;
  Lease sql = pool.acquire();
  *sql << "CREATE TABLE settings (k VARCHAR(32) PRIMARY KEY, v VARCHAR(32))";
  const std::string key = "api_key";
  const std::string value = "abc";
  sql->once << "INSERT INTO settings (k, v) VALUES (:k, :v)", soci::use(key), soci::use(value);
  std::string read;
  *sql << "SELECT v FROM settings WHERE k = :k", soci::use(key), soci::into(read);
  EXPECT_EQ(read, "abc");
  EXPECT_TRUE(sql);
  EXPECT_FALSE(sql.reused());
  EXPECT_EQ(sql.site().line(), line);
  EXPECT_STREQ(sql.site().file_name(), __FILE__);
}

TEST_P(PoolTest, OpensConnectionsOnlyWhenNeeded) {
  Pool pool(config(3));
  EXPECT_EQ(pool.stats().open, 0u);
  { Lease a = pool.acquire(); }
  { Lease b = pool.acquire(); }
  const PoolStats stats = pool.stats();
  EXPECT_EQ(stats.open, 1u);
  EXPECT_EQ(stats.connections_opened, 1u);
  EXPECT_EQ(stats.acquires, 2u);
  EXPECT_EQ(stats.idle, 1u);
}

TEST_P(PoolTest, AcquireTimesOutWhenExhausted) {
  PoolConfig cfg = config(1, 0);
  cfg.name = "exhausted";
  cfg.checkout_timeout = 200ms;
  cfg.min_idle = 1;  // opened by the constructor: a connect is not what times out here
  Pool pool(cfg);
  Lease holder = pool.acquire();
  const std::string holder_site = format_site(holder.site());

  std::string message;
  std::chrono::nanoseconds waited{0};
  std::thread([&] {
    try {
      Lease lease = pool.acquire();
    } catch (const PoolTimeout& e) {
      message = e.what();
      waited = e.waited();
    }
  }).join();

  EXPECT_GE(waited, 200ms);
  EXPECT_NE(message.find("QueuePool limit of size 1 overflow 0 reached"), std::string::npos)
      << message;
  EXPECT_NE(message.find("pool 'exhausted'"), std::string::npos) << message;
  EXPECT_NE(message.find("within 0.2"), std::string::npos) << message;
  EXPECT_NE(message.find("(total=1, active=1, idle=0, waiting=1)"), std::string::npos) << message;
  EXPECT_NE(message.find(holder_site + " (1 lease"), std::string::npos) << message;
  if (GetParam() == TestBackend::kPostgreSQL) {
    EXPECT_EQ(message.find(testing::pg_server().password), std::string::npos) << message;
    EXPECT_NE(message.find(":***@"), std::string::npos) << message;
  }
  EXPECT_EQ(pool.stats().timeouts, 1u);
  EXPECT_EQ(pool.stats().pending, 0u);
}

TEST_P(PoolTest, TryAcquireReturnsNulloptWhenExhausted) {
  Pool pool(config(1, 0));
  { Lease warm = pool.acquire(); }  // the one connection, idle
  std::optional<Lease> first = pool.try_acquire(0ms);
  ASSERT_TRUE(first.has_value());
  std::thread([&] {
    EXPECT_FALSE(pool.try_acquire(0ms).has_value());
    const auto start = std::chrono::steady_clock::now();
    EXPECT_FALSE(pool.try_acquire(50ms).has_value());
    EXPECT_GE(std::chrono::steady_clock::now() - start, 50ms);
  }).join();
  first.reset();
  std::thread([&] { EXPECT_TRUE(pool.try_acquire(0ms).has_value()); }).join();
  EXPECT_EQ(pool.stats().timeouts, 2u);
}

TEST_P(PoolTest, OverflowGrowsUnderLoadAndShrinksWhenLeasesComeBack) {
  Pool pool(config(2, 2));
  std::vector<Lease> leases;
  for (int i = 0; i < 4; ++i) leases.push_back(pool.acquire_new());
  PoolStats stats = pool.stats();
  EXPECT_EQ(stats.open, 4u);
  EXPECT_EQ(stats.active, 4u);
  EXPECT_EQ(stats.overflow_in_use, 2u);

  // Beyond pool_size + max_overflow there is nothing more to give.
  std::thread([&] { EXPECT_FALSE(pool.try_acquire(20ms).has_value()); }).join();

  // The first two come back to a pool with fewer than pool_size idle: kept.
  leases[0].release();
  leases[1].release();
  stats = pool.stats();
  EXPECT_EQ(stats.open, 4u);
  EXPECT_EQ(stats.idle, 2u);
  // The next two find pool_size idle connections: closed as overflow.
  leases[2].release();
  leases[3].release();
  stats = pool.stats();
  EXPECT_EQ(stats.open, 2u);
  EXPECT_EQ(stats.idle, 2u);
  EXPECT_EQ(stats.overflow_in_use, 0u);
  EXPECT_EQ(stats.closed_by(CloseReason::kOverflow), 2u);
}

TEST_P(PoolTest, WaitersAreServedInArrivalOrder) {
  PoolConfig cfg = config(1, 0);
  cfg.checkout_timeout = 10s;
  Pool pool(cfg);
  Lease holder = pool.acquire();

  std::mutex mu;
  std::vector<int> served;
  std::vector<std::thread> waiters;
  constexpr int kWaiters = 6;
  for (int i = 0; i < kWaiters; ++i) {
    waiters.emplace_back([&, i] {
      Lease lease = pool.acquire();
      std::lock_guard lock(mu);
      served.push_back(i);
    });
    // The next waiter starts only once this one is queued.
    ASSERT_TRUE(
        eventually([&] { return pool.stats().pending == static_cast<std::size_t>(i + 1); }));
  }
  holder.release();
  for (std::thread& t : waiters) t.join();
  EXPECT_EQ(served, (std::vector<int>{0, 1, 2, 3, 4, 5}));
  // The holder's own acquire opened a connection for itself: not a wait.
  EXPECT_EQ(pool.stats().waits, static_cast<std::uint64_t>(kWaiters));
}

TEST_P(PoolTest, NestedAcquireSharesTheThreadsConnection) {
  Pool pool(config(2));
  Lease outer = pool.acquire();
  Lease inner = pool.acquire();
  EXPECT_TRUE(inner.reused());
  EXPECT_EQ(&*outer, &*inner);
  EXPECT_EQ(outer.connection_id(), inner.connection_id());
  PoolStats stats = pool.stats();
  EXPECT_EQ(stats.acquires, 1u);
  EXPECT_EQ(stats.reuses, 1u);
  EXPECT_EQ(stats.active, 1u);

  inner.release();
  EXPECT_EQ(pool.stats().active, 1u) << "an inner release must not return the connection";
  outer.release();
  stats = pool.stats();
  EXPECT_EQ(stats.active, 0u);
  EXPECT_EQ(stats.idle, 1u);
}

TEST_P(PoolTest, ConnectionGoesBackWhenTheLastNestedLeaseIsReleased) {
  Pool pool(config(2));
  Lease outer = pool.acquire();
  Lease inner = pool.acquire();
  outer.release();  // out of order: the inner lease still uses the connection
  EXPECT_EQ(pool.stats().active, 1u);
  *inner << "SELECT 1";
  inner.release();
  EXPECT_EQ(pool.stats().active, 0u);
  // The next acquire on this thread is a fresh checkout, not a stale reuse.
  Lease again = pool.acquire();
  EXPECT_FALSE(again.reused());
  EXPECT_EQ(pool.stats().acquires, 2u);
}

TEST_P(PoolTest, OtherThreadsDoNotShareAThreadsConnection) {
  Pool pool(config(2));
  Lease mine = pool.acquire();
  std::uint64_t theirs = 0;
  std::thread([&] {
    Lease lease = pool.acquire();
    EXPECT_FALSE(lease.reused());
    theirs = lease.connection_id();
  }).join();
  EXPECT_NE(theirs, mine.connection_id());
}

TEST_P(PoolTest, AcquireNewGetsAnIndependentConnection) {
  Pool pool(config(2));
  Lease outer = pool.acquire();
  Lease independent = pool.acquire_new();
  EXPECT_FALSE(independent.reused());
  EXPECT_NE(&*outer, &*independent);
  EXPECT_NE(outer.connection_id(), independent.connection_id());
  // Nested acquires keep sharing the thread's first connection.
  Lease nested = pool.acquire();
  EXPECT_EQ(nested.connection_id(), outer.connection_id());
  EXPECT_EQ(pool.stats().acquires, 2u);
}

TEST_P(PoolTest, AcquireNewOnAnExhaustedPoolTimesOutInsteadOfSharing) {
  PoolConfig cfg = config(1, 0);
  cfg.checkout_timeout = 100ms;
  cfg.min_idle = 1;
  Pool pool(cfg);
  Lease outer = pool.acquire();
  try {
    Lease second = pool.acquire_new();  // the documented deadlock risk, bounded
    FAIL() << "acquire_new() shared or overflowed";
  } catch (const PoolTimeout& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("The waiting thread itself holds 1 of those leases"), std::string::npos)
        << message;
    EXPECT_NE(message.find("Use acquire() to share"), std::string::npos) << message;
  }
}

TEST_P(PoolTest, ReturnRollsBackAnOpenTransaction) {
  Pool pool(config(1));
  *pool.acquire() << "CREATE TABLE t (x INTEGER)";
  {
    Lease sql = pool.acquire();
    sql->begin();
    *sql << "INSERT INTO t (x) VALUES (1)";
    // returned without commit
  }
  EXPECT_EQ(pool.stats().rollbacks_on_return, 1u);
  int rows = -1;
  Lease next = pool.acquire();
  *next << "SELECT count(*) FROM t", soci::into(rows);
  EXPECT_EQ(rows, 0);
  // The next holder starts outside any transaction: it can begin and commit.
  next->begin();
  *next << "INSERT INTO t (x) VALUES (2)";
  next->commit();
  next.release();
  auto outside = db_->open_session();
  *outside << "SELECT count(*) FROM t", soci::into(rows);
  EXPECT_EQ(rows, 1);
}

TEST_P(PoolTest, InvalidatedConnectionIsClosedNotReturned) {
  Pool pool(config(1));
  std::uint64_t first = 0;
  {
    Lease lease = pool.acquire();
    first = lease.connection_id();
    lease.invalidate();
  }
  EXPECT_EQ(pool.stats().closed_by(CloseReason::kBroken), 1u);
  EXPECT_EQ(pool.stats().open, 0u);
  Lease next = pool.acquire();
  EXPECT_NE(next.connection_id(), first);
  *next << "SELECT 1";
}

TEST_P(PoolTest, MinIdleConnectionsAreOpenedAtStart) {
  PoolConfig cfg = config(3);
  cfg.min_idle = 2;
  Pool pool(cfg);
  EXPECT_EQ(pool.stats().open, 2u);
  EXPECT_EQ(pool.stats().idle, 2u);
}

TEST_P(PoolTest, ObserversSeeEveryEvent) {
  Pool pool(config(2, 1));
  auto observer = std::make_shared<RecordingObserver>();
  Subscription subscription = pool.add_observer(observer);
  {
    Lease a = pool.acquire();
    Lease nested = pool.acquire();
    Lease b = pool.acquire_new();
    Lease c = pool.acquire_new();  // overflow
  }
  const PoolStats stats = pool.stats();
  EXPECT_EQ(observer->connects, 3);
  EXPECT_EQ(observer->checkouts, 3);
  EXPECT_EQ(observer->reuses, 1);
  EXPECT_EQ(observer->checkins, 3);
  EXPECT_EQ(observer->closes, 1);  // the overflow connection
  EXPECT_EQ(static_cast<std::uint64_t>(observer->connects), stats.connections_opened);

  subscription.reset();
  { Lease d = pool.acquire(); }
  EXPECT_EQ(observer->checkouts, 3);
}

// A checkin's figures as a counting observer sees them; it never asks for
// the whole event.
class CountingObserver : public PoolObserver {
 public:
  unsigned events() const override { return kCheckinEvents; }
  bool on_checkin_fast(source_location site, std::chrono::nanoseconds held,
                       std::int64_t /*checkout_ns*/, std::uint64_t reuses) override {
    std::lock_guard lock(mu);
    lines.push_back(site.line());
    nested.push_back(reuses);
    holds.push_back(held);
    return false;
  }
  void on_checkin(const CheckinEvent&) override { events_sent.fetch_add(1); }

  std::mutex mu;
  std::vector<std::uint_least32_t> lines;
  std::vector<std::uint64_t> nested;
  std::vector<std::chrono::nanoseconds> holds;
  std::atomic<int> events_sent{0};
};

class ThrowingObserver : public PoolObserver {
 public:
  bool on_checkin_fast(source_location, std::chrono::nanoseconds, std::int64_t,
                       std::uint64_t) override {
    calls.fetch_add(1);
    throw std::runtime_error("observer bug");
  }
  std::atomic<int> calls{0};
};

TEST_P(PoolTest, EachOfSeveralObserversGetsTheCheckinsItAsksFor) {
  Pool pool(config(2));
  auto throwing = std::make_shared<ThrowingObserver>();
  auto counting = std::make_shared<CountingObserver>();
  auto recording = std::make_shared<RecordingObserver>();  // asks for every whole event
  Subscription first = pool.add_observer(throwing);
  Subscription second = pool.add_observer(counting);
  Subscription third = pool.add_observer(recording);
  const std::uint_least32_t line = __LINE__ + 2;
  {
    Lease outer = pool.acquire();
    Lease nested = pool.acquire();
    std::this_thread::sleep_for(20ms);
  }
  { Lease other = pool.acquire_new(); }
  EXPECT_EQ(throwing->calls, 2);
  EXPECT_EQ(recording->checkins, 2) << "an observer that throws costs the others nothing";
  EXPECT_EQ(counting->events_sent, 0) << "the whole event went to one that did not ask";
  {
    std::lock_guard lock(counting->mu);
    ASSERT_EQ(counting->lines.size(), 2u);
    EXPECT_EQ(counting->lines[0], line);
    EXPECT_EQ(counting->nested, (std::vector<std::uint64_t>{1, 0}));
    EXPECT_GE(counting->holds[0], 20ms);
  }
  EXPECT_EQ(pool.stats().idle, pool.stats().open) << "every connection came back";

  // Alone, the counting observer is called on its own path: the same figures.
  first.reset();
  third.reset();
  const std::uint_least32_t alone = __LINE__ + 1;
  { Lease again = pool.acquire(); }
  EXPECT_EQ(throwing->calls, 2);
  EXPECT_EQ(recording->checkins, 2);
  std::lock_guard lock(counting->mu);
  ASSERT_EQ(counting->lines.size(), 3u);
  EXPECT_EQ(counting->lines[2], alone);
  EXPECT_EQ(counting->nested[2], 0u);
  EXPECT_EQ(counting->events_sent, 0);
}

// Asks for every whole event, and keeps the fast path's figures beside it.
class FiguresObserver : public PoolObserver {
 public:
  unsigned events() const override { return kCheckinEvents; }
  bool on_checkin_fast(source_location site, std::chrono::nanoseconds held,
                       std::int64_t checkout_ns, std::uint64_t reuses) override {
    std::lock_guard lock(mu);
    fast.push_back({site.line(), held, checkout_ns, reuses});
    return true;
  }
  void on_checkin(const CheckinEvent& e) override {
    std::lock_guard lock(mu);
    whole.push_back(e);
  }
  struct Fast {
    std::uint_least32_t line;
    std::chrono::nanoseconds held;
    std::int64_t checkout_ns;
    std::uint64_t reuses;
  };
  std::mutex mu;
  std::vector<Fast> fast;
  std::vector<CheckinEvent> whole;
};

TEST_P(PoolTest, ACheckinsFastFiguresAreThoseOfItsWholeEvent) {
  Pool pool(config(2));
  auto alone = std::make_shared<FiguresObserver>();
  auto beside = std::make_shared<FiguresObserver>();
  Subscription first = pool.add_observer(alone);
  const auto check = [](FiguresObserver& o, std::size_t n) {
    std::lock_guard lock(o.mu);
    ASSERT_EQ(o.fast.size(), n);
    ASSERT_EQ(o.whole.size(), n);
    for (std::size_t i = 0; i < n; ++i) {
      const FiguresObserver::Fast& f = o.fast[i];
      const CheckinEvent& e = o.whole[i];
      EXPECT_EQ(f.line, e.site.line());
      EXPECT_EQ(f.held, e.held);
      EXPECT_EQ(f.checkout_ns + f.held.count(), e.time_ns) << "checkout_ns is when it went out";
      EXPECT_EQ(f.reuses, e.reuses);
    }
  };
  {
    Lease outer = pool.acquire();
    { Lease nested = pool.acquire(); }
    std::this_thread::sleep_for(5ms);
  }
  check(*alone, 1);  // one observer: the pool's inline call
  {
    std::lock_guard lock(alone->mu);
    EXPECT_GE(alone->fast[0].held, 5ms);
    EXPECT_EQ(alone->fast[0].reuses, 1u);
  }
  Subscription second = pool.add_observer(beside);
  { Lease lease = pool.acquire(); }
  check(*alone, 2);  // two: the loop over them
  check(*beside, 1);
}

TEST_P(PoolTest, ConnectFailureIsClearAndLeavesCountsIntact) {
  PoolConfig cfg = config(2);
  if (GetParam() == TestBackend::kSqlite) {
    cfg.url = "sqlite:///nonexistent-poolscope-dir/x.db";
  } else {
    cfg.url = testing::pg_server().url("postgres");
    const std::string& password = testing::pg_server().password;
    cfg.url.replace(cfg.url.find(password), password.size(), "wrong-s3cret");
  }
  cfg.name = "broken";
  Pool pool(cfg);
  auto observer = std::make_shared<RecordingObserver>();
  Subscription subscription = pool.add_observer(observer);
  for (int attempt = 0; attempt < 2; ++attempt) {
    try {
      Lease lease = pool.acquire();
      FAIL() << "connected to " << cfg.url;
    } catch (const ConnectError& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find("pool 'broken' cannot connect to " + pool.redacted_url()),
                std::string::npos)
          << message;
      EXPECT_EQ(message.find("wrong-s3cret"), std::string::npos) << message;
    }
  }
  const PoolStats stats = pool.stats();
  EXPECT_EQ(stats.open, 0u);
  EXPECT_EQ(stats.active, 0u);
  EXPECT_EQ(stats.connect_failures, 2u);
  EXPECT_EQ(observer->connect_failures, 2);
}

TEST_P(PoolTest, TheLargestTimeoutsWaitForAConnectionInsteadOfOverflowing) {
  PoolConfig cfg = config(1, 0);
  cfg.checkout_timeout = std::chrono::milliseconds::max();
  Pool pool(cfg);
  Lease holder = pool.acquire();
  auto outcome = [](auto acquire) {
    try {
      return acquire() ? std::string("lease") : std::string("nullopt");
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
  };
  auto tried = std::async(std::launch::async, [&] {
    return outcome([&] { return pool.try_acquire(std::chrono::milliseconds::max()).has_value(); });
  });
  EXPECT_TRUE(eventually([&] { return pool.stats().pending == 1; }));
  auto acquired = std::async(std::launch::async, [&] {
    return outcome([&] { return static_cast<bool>(pool.acquire()); });
  });
  EXPECT_TRUE(eventually([&] { return pool.stats().pending == 2; }));
  holder.release();
  EXPECT_EQ(tried.get(), "lease");
  EXPECT_EQ(acquired.get(), "lease");
  EXPECT_EQ(pool.stats().timeouts, 0u);
}

INSTANTIATE_TEST_SUITE_P(Backends, PoolTest,
                         ::testing::Values(TestBackend::kSqlite, TestBackend::kPostgreSQL),
                         [](const auto& p) { return testing::backend_name(p.param); });

}  // namespace
}  // namespace poolscope
