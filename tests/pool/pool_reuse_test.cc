// Same-thread reuse in the forms people write, not only the form the
// implementation likes: a lease assigned after the fact, in an optional, a
// unique_ptr or a member. Each render takes one checkout and its nested reads
// reuse it, also on a pool of one (:memory: needs that), where a nested read
// that did not share would wait on itself until PoolTimeout.

#include <gtest/gtest.h>
#include <soci/soci.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "poolscope/pool/errors.h"
#include "poolscope/pool/pool.h"
#include "test_db.h"

namespace poolscope {
namespace {

using namespace std::chrono_literals;
using testing::TestBackend;
using testing::TestDatabase;

constexpr int kReads = 60;

// The incidents' helper: takes "its own" session for one read.
int read_setting(Pool& pool) {
  Lease sql = pool.acquire();
  int one = 0;
  *sql << "SELECT 1", soci::into(one);
  return one;
}

int render(Pool& pool) {
  int sum = 0;
  for (int i = 0; i < kReads; ++i) sum += read_setting(pool);
  return sum;
}

struct Request {
  Lease sql;
};

class PoolReuseTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "memory") {
      cfg_.url = "sqlite://:memory:";
    } else {
      db_ = std::make_unique<TestDatabase>(GetParam() == "sqlite" ? TestBackend::kSqlite
                                                                  : TestBackend::kPostgreSQL);
      cfg_ = db_->config(1);
    }
    cfg_.pool_size = 1;
    cfg_.max_overflow = 0;
    cfg_.checkout_timeout = 2s;
    pool_ = std::make_unique<Pool>(cfg_);
  }

  // One checkout and kReads reuses for the render.
  void expect_one_checkout_and_reuses(const PoolStats& before) {
    const PoolStats after = pool_->stats();
    EXPECT_EQ(after.acquires - before.acquires, 1u);
    EXPECT_EQ(after.reuses - before.reuses, static_cast<std::uint64_t>(kReads));
    EXPECT_EQ(after.timeouts, 0u);
  }

  std::unique_ptr<TestDatabase> db_;
  PoolConfig cfg_;
  std::unique_ptr<Pool> pool_;
};

TEST_P(PoolReuseTest, ALeaseAssignedAfterTheFactIsShared) {
  const PoolStats before = pool_->stats();
  const bool pool_on = true;
  {
    Lease held;
    if (pool_on) held = pool_->acquire();
    EXPECT_EQ(render(*pool_), kReads);
  }
  expect_one_checkout_and_reuses(before);
}

TEST_P(PoolReuseTest, ALeaseEmplacedInAnOptionalIsShared) {
  const PoolStats before = pool_->stats();
  {
    std::optional<Lease> held;
    held.emplace(pool_->acquire());
    EXPECT_EQ(render(*pool_), kReads);
  }
  expect_one_checkout_and_reuses(before);
}

TEST_P(PoolReuseTest, ALeaseInAUniquePtrIsShared) {
  const PoolStats before = pool_->stats();
  {
    auto held = std::make_unique<Lease>(pool_->acquire());
    EXPECT_EQ(render(*pool_), kReads);
  }
  expect_one_checkout_and_reuses(before);
}

TEST_P(PoolReuseTest, ALeaseKeptInAMemberIsShared) {
  const PoolStats before = pool_->stats();
  {
    Request request{pool_->acquire()};
    EXPECT_EQ(render(*pool_), kReads);
    Request moved = std::move(request);  // handed along on the same thread
    EXPECT_EQ(render(*pool_), kReads);
  }
  const PoolStats after = pool_->stats();
  EXPECT_EQ(after.acquires - before.acquires, 1u);
  EXPECT_EQ(after.reuses - before.reuses, static_cast<std::uint64_t>(2 * kReads));
}

TEST_P(PoolReuseTest, TheConnectionGoesBackWhenTheLastLeaseDoes) {
  {
    auto held = std::make_unique<Lease>(pool_->acquire());
    Lease nested = pool_->acquire();
    held.reset();
    EXPECT_EQ(pool_->stats().active, 1u) << "the nested lease still holds it";
  }
  EXPECT_EQ(pool_->stats().active, 0u);
  EXPECT_EQ(pool_->stats().idle, 1u);
}

INSTANTIATE_TEST_SUITE_P(Databases, PoolReuseTest,
                         ::testing::Values("memory", "sqlite", "postgresql"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace poolscope
