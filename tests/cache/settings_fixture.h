// The fixture of the SettingsCache suites: a pool over a fresh SQLite or
// PostgreSQL database holding two accounts' settings, and the incidents'
// account object built from three of them.

#pragma once

#include <gtest/gtest.h>
#include <soci/soci.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "poolscope/cache/instance_cache.h"
#include "poolscope/cache/settings_cache.h"
#include "test_db.h"

namespace poolscope::cache::testing {

using poolscope::testing::TestBackend;
using poolscope::testing::TestDatabase;

// The incidents' account object, built from three settings reads.
struct Account {
  std::string key;
  bool paper;
  int orders;
};

inline InstanceCache<int, Account> account_cache(SettingsCache& settings) {
  return InstanceCache<int, Account>([&settings](const int& id) {
    return std::make_shared<Account>(Account{settings.get<std::string>(id, "api_key"),
                                             settings.get<bool>(id, "paper_account"),
                                             settings.get<int>(id, "max_orders")});
  });
}

class SettingsCacheTest : public ::testing::TestWithParam<TestBackend> {
 protected:
  void SetUp() override {
    db_ = std::make_unique<TestDatabase>(GetParam());
    pool_ = std::make_unique<Pool>(db_->config(4));
    Lease sql = pool_->acquire();
    if (GetParam() == TestBackend::kSqlite) {
      std::string mode;  // readers alongside a writer, as SQLite apps run it
      *sql << "PRAGMA journal_mode=WAL", soci::into(mode);
    }
    *sql << "CREATE TABLE account_settings ("
            " account_id INTEGER NOT NULL,"
            " setting_key VARCHAR(64) NOT NULL,"
            " setting_value VARCHAR(256) NOT NULL CHECK (length(setting_value) < 100),"
            " PRIMARY KEY (account_id, setting_key))";
    for (int account : {1, 2}) {
      for (auto [k, v] : {std::pair{"api_key", "key-1"},
                          {"paper_account", "true"},
                          {"max_orders", "25"},
                          {"risk", "0.125"},
                          {"mode", "maybe"}}) {
        // Named: soci::use binds by reference and runs at the end of the statement.
        const std::string key = k, value = v;
        *sql << "INSERT INTO account_settings VALUES (:a, :k, :v)", soci::use(account),
            soci::use(key), soci::use(value);
      }
    }
  }

  SettingsCacheConfig config() const {
    SettingsCacheConfig c;
    c.name = "account_settings";
    c.table = {"account_settings", "account_id", "setting_key", "setting_value"};
    return c;
  }

  std::uint64_t checkouts() const { return pool_->stats().acquires; }

  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<Pool> pool_;
};

}  // namespace poolscope::cache::testing
