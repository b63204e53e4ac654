#include "poolscope/pool/pool_config.h"

#include <gtest/gtest.h>

#include <functional>
#include <stdexcept>
#include <string>

#include "poolscope/pool/pool.h"

namespace poolscope {
namespace {

using std::chrono::milliseconds;

PoolConfig valid() {
  PoolConfig config;
  config.url = "sqlite:///tmp/poolscope-config-test.db";
  config.name = "cfg";
  return config;
}

TEST(PoolConfigTest, DefaultsAreValidAndMatchTheDesign) {
  const PoolConfig config = valid();
  EXPECT_NO_THROW(config.validate());
  EXPECT_EQ(config.pool_size, 10u);
  EXPECT_EQ(config.max_overflow, 20u);
  EXPECT_EQ(config.checkout_timeout, milliseconds(30'000));
  EXPECT_EQ(config.max_lifetime, milliseconds(30 * 60'000));
  EXPECT_EQ(config.idle_timeout, milliseconds(10 * 60'000));
  EXPECT_EQ(config.validation_interval, milliseconds(500));
  EXPECT_TRUE(config.validate_on_checkout);
  EXPECT_EQ(config.reset_on_return, ResetOnReturn::kRollback);
}

struct InvalidCase {
  const char* field;
  const char* value;  // as the message shows it
  std::function<void(PoolConfig&)> breaks;
};

class PoolConfigInvalidTest : public ::testing::TestWithParam<InvalidCase> {};

TEST_P(PoolConfigInvalidTest, ValidateNamesTheFieldAndTheValue) {
  PoolConfig config = valid();
  GetParam().breaks(config);
  try {
    config.validate();
    FAIL() << "accepted an invalid " << GetParam().field;
  } catch (const std::invalid_argument& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(std::string("PoolConfig.") + GetParam().field), std::string::npos)
        << message;
    EXPECT_NE(message.find(GetParam().value), std::string::npos) << message;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Fields, PoolConfigInvalidTest,
    ::testing::Values(
        InvalidCase{"url", "empty", [](PoolConfig& c) { c.url.clear(); }},
        InvalidCase{"name", "'bad name'", [](PoolConfig& c) { c.name = "bad name"; }},
        InvalidCase{"name", "'a\"b'", [](PoolConfig& c) { c.name = "a\"b"; }},
        InvalidCase{"pool_size", "got 0", [](PoolConfig& c) { c.pool_size = 0; }},
        InvalidCase{"pool_size", "got 20000", [](PoolConfig& c) { c.pool_size = 20000; }},
        InvalidCase{"max_overflow", "got 9995", [](PoolConfig& c) { c.max_overflow = 9995; }},
        InvalidCase{"checkout_timeout", "got 0 ms",
                    [](PoolConfig& c) { c.checkout_timeout = milliseconds(0); }},
        InvalidCase{"max_lifetime", "got -1 ms",
                    [](PoolConfig& c) { c.max_lifetime = milliseconds(-1); }},
        InvalidCase{"idle_timeout", "got -5 ms",
                    [](PoolConfig& c) { c.idle_timeout = milliseconds(-5); }},
        InvalidCase{"min_idle", "got 11", [](PoolConfig& c) { c.min_idle = 11; }},
        InvalidCase{"validation_interval", "got -1 ms",
                    [](PoolConfig& c) { c.validation_interval = milliseconds(-1); }},
        InvalidCase{"reset_on_return", "got 7",
                    [](PoolConfig& c) { c.reset_on_return = static_cast<ResetOnReturn>(7); }},
        InvalidCase{"connect_timeout", "got 0 ms",
                    [](PoolConfig& c) { c.connect_timeout = milliseconds(0); }},
        InvalidCase{"sqlite_busy_timeout", "got -1 ms",
                    [](PoolConfig& c) { c.sqlite_busy_timeout = milliseconds(-1); }},
        InvalidCase{"connect_timeout", "got 9223372036854775807 ms",
                    [](PoolConfig& c) { c.connect_timeout = milliseconds::max(); }},
        InvalidCase{"sqlite_busy_timeout", "got 2592000000 ms",
                    [](PoolConfig& c) { c.sqlite_busy_timeout = std::chrono::hours(24 * 30); }},
        InvalidCase{"housekeeping_interval", "got 0 ms",
                    [](PoolConfig& c) { c.housekeeping_interval = milliseconds(0); }}));

TEST(PoolConfigTest, TheLargestTimeoutsAndLimitsMeanNever) {
  PoolConfig config = valid();
  config.checkout_timeout = milliseconds::max();
  config.max_lifetime = milliseconds::max();
  config.idle_timeout = milliseconds::max();
  config.validation_interval = milliseconds::max();
  config.housekeeping_interval = milliseconds::max();
  EXPECT_NO_THROW(config.validate());
  config.url = "sqlite:///tmp/poolscope-config-never.db";
  Pool pool(config);
  std::uint64_t id = 0;
  {
    Lease lease = pool.acquire();
    id = lease.connection_id();
  }
  Lease again = pool.acquire();
  EXPECT_EQ(again.connection_id(), id) << "an unlimited lifetime recycled the connection";
}

TEST(PoolConfigTest, PoolRejectsInvalidConfigBeforeConnecting) {
  PoolConfig config = valid();
  config.pool_size = 0;
  EXPECT_THROW(Pool{config}, std::invalid_argument);
}

TEST(PoolConfigTest, PoolRefusesSharedInMemorySqlite) {
  PoolConfig config = valid();
  config.url = "sqlite://:memory:";
  try {
    Pool pool(config);
    FAIL() << "a 10 + 20 pool over :memory: was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("own empty database"), std::string::npos) << e.what();
  }
  config.pool_size = 1;
  config.max_overflow = 0;
  Pool pool(config);
  *pool.acquire() << "CREATE TABLE t (x INTEGER)";
  *pool.acquire() << "INSERT INTO t VALUES (1)";  // same database: the table is still there
}

TEST(PoolConfigTest, PoolNamesItselfWhenNoNameIsGiven) {
  PoolConfig config = valid();
  config.name.clear();
  Pool a(config);
  Pool b(config);
  EXPECT_EQ(a.name().rfind("pool-", 0), 0u);
  EXPECT_NE(a.name(), b.name());
}

TEST(PoolConfigTest, ConfigKeepsOnlyTheRedactedUrl) {
  PoolConfig config = valid();
  config.url = "postgresql://u:s3cret@127.0.0.1:1/d";
  Pool pool(config);  // lazy: connects on first acquire
  EXPECT_EQ(pool.config().url, "postgresql://u:***@127.0.0.1:1/d");
  EXPECT_EQ(pool.redacted_url(), "postgresql://u:***@127.0.0.1:1/d");
  EXPECT_EQ(pool.stats().url.find("s3cret"), std::string::npos);
}

}  // namespace
}  // namespace poolscope
