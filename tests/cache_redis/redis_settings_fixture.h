// A fixture for the Redis tier's fault and coherence tests: a Redis of the
// test's own (to kill, stop or restart), a fresh database with 200 settings
// rows (entity i has api_key "key-i"), a pool on it and a unique prefix.

#pragma once

#include <gtest/gtest.h>
#include <soci/soci.h>

#include <memory>
#include <string>

#include "poolscope/cache/redis/redis_tier.h"
#include "redis_support.h"
#include "test_db.h"

namespace poolscope::testing {

class RedisSettingsTest : public ::testing::Test {
 protected:
  // PostgreSQL when another process shares the database; SQLite for
  // timing, so that no other test's load on the shared PostgreSQL server
  // shows in what the Redis tier costs.
  void make_database(TestBackend backend) {
    fixture_redis();  // points POOLSCOPE_PG_ENV at the PostgreSQL fixture
    db_ = std::make_unique<TestDatabase>(backend);
    pool_ = std::make_unique<Pool>(db_->config(4));
    Lease sql = pool_->acquire();
    *sql << "CREATE TABLE account_settings (account_id INTEGER NOT NULL,"
            " setting_key VARCHAR(64) NOT NULL, setting_value VARCHAR(256) NOT NULL,"
            " PRIMARY KEY (account_id, setting_key))";
    soci::transaction tx(*sql);
    for (int i = 1; i <= 200; ++i) {
      const std::string value = "key-" + std::to_string(i);
      *sql << "INSERT INTO account_settings VALUES (:i, 'api_key', :v)", soci::use(i),
          soci::use(value);
    }
    tx.commit();
  }
  // A SettingsCache "s" on the table, shared through tier.
  static cache::SettingsCacheConfig settings(std::shared_ptr<cache::RedisTier> tier) {
    return {.name = "s",
            .table = {"account_settings", "account_id", "setting_key", "setting_value"},
            .shared_tier = std::move(tier)};
  }

  const std::string prefix_ = unique_prefix();
  OwnRedis redis_;
  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<Pool> pool_;
};

}  // namespace poolscope::testing
