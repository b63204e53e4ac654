// SettingsCache against real SQLite and PostgreSQL databases.

#include "poolscope/cache/settings_cache.h"

#include <gtest/gtest.h>
#include <soci/soci.h>

#include <atomic>
#include <string_view>
#include <thread>
#include <vector>

#include "poolscope/cache/instance_cache.h"
#include "poolscope/cache/sessions.h"
#include "settings_fixture.h"
#include "test_db.h"
#include "test_util.h"

namespace poolscope::cache {
namespace {

using namespace std::chrono_literals;
using poolscope::testing::TestBackend;

using testing::Account;
using testing::account_cache;
using testing::SettingsCacheTest;

TEST_P(SettingsCacheTest, ReadsEveryTypedSettingOfAnEntityWithOneQuery) {
  SettingsCache settings(*pool_, config());
  const std::uint64_t before = checkouts();
  EXPECT_EQ(settings.get<std::string>(1, "api_key"), "key-1");
  EXPECT_TRUE(settings.get<bool>(1, "paper_account"));
  EXPECT_EQ(settings.get<int>(1, "max_orders"), 25);
  EXPECT_EQ(settings.get<long long>(1, "max_orders"), 25);
  EXPECT_DOUBLE_EQ(settings.get<double>(1, "risk"), 0.125);
  EXPECT_EQ(settings.find<int>(1, "absent"), std::nullopt);
  EXPECT_EQ(settings.settings(1)->values().size(), 5u);
  EXPECT_EQ(checkouts() - before, 1u) << "all of entity 1 came from one checkout";
  const CacheStats s = settings.stats();
  EXPECT_EQ(s.loads, 1u);
  EXPECT_EQ(s.hits, 6u);
  EXPECT_EQ(s.sessions_avoided, 6u) << "each hit spared the checkout its load took";
}

TEST_P(SettingsCacheTest, TypedReadErrorsNameTheTableEntityKeyAndType) {
  SettingsCache settings(*pool_, config());
  try {
    settings.get<std::string>(1, "api_secret");
    FAIL();
  } catch (const SettingNotFound& e) {
    EXPECT_STREQ(e.what(), "account_settings: account_id 1 has no setting 'api_secret'");
  }
  try {
    settings.get<bool>(2, "mode");
    FAIL();
  } catch (const SettingTypeError& e) {
    EXPECT_STREQ(e.what(),
                 "account_settings: setting 'mode' of account_id 2 is 'maybe', not a bool");
  }
  EXPECT_THROW(settings.get<int>(1, "risk"), SettingTypeError);     // "0.125" is not an int
  EXPECT_THROW(settings.get<int>(1, "api_key"), SettingTypeError);  // nor is "key-1"
  EXPECT_THROW(settings.find<double>(1, "mode"), SettingTypeError);
}

TEST_P(SettingsCacheTest, TheNextReadAfterASaveSeesTheNewValue) {
  SettingsCache settings(*pool_, config());
  EXPECT_EQ(settings.get<std::string>(1, "api_key"), "key-1");
  settings.save(1, "api_key", "key-2");
  EXPECT_EQ(settings.get<std::string>(1, "api_key"), "key-2");
  settings.save(1, {{"api_key", "key-3"}, {"new_setting", "on"}});
  EXPECT_EQ(settings.get<std::string>(1, "api_key"), "key-3");
  EXPECT_TRUE(settings.get<bool>(1, "new_setting"));
  EXPECT_EQ(settings.get<std::string>(2, "api_key"), "key-1") << "other entities untouched";
  // Written through: a plain session sees it too.
  std::string stored;
  *db_->open_session() << "SELECT setting_value FROM account_settings WHERE account_id = 1 AND "
                          "setting_key = 'api_key'",
      soci::into(stored);
  EXPECT_EQ(stored, "key-3");
}

TEST_P(SettingsCacheTest, ASaveIsOneTransaction) {
  SettingsCache settings(*pool_, config());
  EXPECT_EQ(settings.get<std::string>(1, "api_key"), "key-1");
  // The second value breaks the table's CHECK: nothing may be saved.
  EXPECT_THROW(settings.save(1, {{"api_key", "key-9"}, {"zz_too_long", std::string(150, 'x')}}),
               soci::soci_error);
  EXPECT_EQ(settings.get<std::string>(1, "api_key"), "key-1");
  settings.invalidate(1);
  EXPECT_EQ(settings.get<std::string>(1, "api_key"), "key-1") << "rolled back in the database";
  EXPECT_EQ(pool_->stats().active, 0u);
}

TEST_P(SettingsCacheTest, ReadersNeverSeeAValueOlderThanTheLastCommittedSave) {
  SettingsCache settings(*pool_, config());
  std::atomic<int> committed{0};
  std::atomic<bool> stop{false};
  std::atomic<int> stale{0}, reads{0};
  std::thread writer([&] {
    for (int version = 1; !stop.load(); ++version) {
      settings.save(1, "max_orders", std::to_string(version));
      committed.store(version);
      // The writer reads its own write.
      if (settings.get<int>(1, "max_orders") < version) stale.fetch_add(1);
      std::this_thread::sleep_for(2ms);
    }
  });
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        const int floor = committed.load();
        const int seen = settings.get<int>(1, "max_orders");
        reads.fetch_add(1);
        if (floor > 0 && seen < floor) stale.fetch_add(1);
      }
    });
  }
  std::this_thread::sleep_for(1s);
  stop = true;
  writer.join();
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(stale.load(), 0);
  EXPECT_GT(committed.load(), 5);
  EXPECT_GT(reads.load(), 100);
}

TEST_P(SettingsCacheTest, LayeredCachesCountEverySessionTheySpareOnce) {
  SettingsCache settings(*pool_, config());
  InstanceCache<int, Account> accounts = account_cache(settings);
  const std::uint64_t before = checkouts();
  for (int i = 0; i < 10; ++i) accounts.get(1);
  EXPECT_EQ(checkouts() - before, 1u);
  // Building account 1 took one checkout and two settings hits: it costs 3,
  // which each of the 9 instance hits spares.
  EXPECT_EQ(settings.stats().sessions_avoided, 2u);
  EXPECT_EQ(accounts.stats().sessions_avoided, 27u);
}

TEST_P(SettingsCacheTest, ForceNewInstancesCountTheSessionsTheirHitsSpare) {
  SettingsCache settings(*pool_, config());
  InstanceCache<int, Account> accounts = account_cache(settings);
  accounts.get(1);
  const auto fresh = accounts.get(1, /*force_new=*/true);  // three settings hits: it costs 3
  const std::uint64_t before = accounts.stats().sessions_avoided;
  EXPECT_EQ(accounts.get(1), fresh);
  EXPECT_EQ(accounts.stats().sessions_avoided - before, 3u);
}

TEST_P(SettingsCacheTest, AReadInsideTheCallersTransactionCachesOnlyCommittedData) {
  SettingsCache settings(*pool_, config());
  {
    Lease sql = pool_->acquire();
    soci::transaction tx(*sql);
    *sql << "UPDATE account_settings SET setting_value = 'UNCOMMITTED' WHERE account_id = 1 AND "
            "setting_key = 'api_key'";
    // A miss on this thread, inside the transaction: the load must not see it.
    EXPECT_EQ(settings.get<std::string>(1, "api_key"), "key-1");
    tx.rollback();
  }
  std::string elsewhere;
  std::thread([&] { elsewhere = settings.get<std::string>(1, "api_key"); }).join();
  EXPECT_EQ(elsewhere, "key-1") << "another thread must never be served the rolled-back value";
  EXPECT_EQ(pool_->stats().active, 0u);
}

TEST_P(SettingsCacheTest, ReservedWordsWorkAsTableAndColumnNames) {
  *pool_->acquire()
      << "CREATE TABLE \"order\" (\"user\" INTEGER NOT NULL, \"key\" VARCHAR(64) NOT NULL,"
         " \"value\" VARCHAR(64) NOT NULL, PRIMARY KEY (\"user\", \"key\"))";
  SettingsCache settings(*pool_, {.name = "orders", .table = {"order", "user", "key", "value"}});
  settings.save(3, "limit", "9");
  settings.save(3, "limit", "10");  // the upsert's update path
  EXPECT_EQ(settings.get<int>(3, "limit"), 10);
}

TEST_P(SettingsCacheTest, AnEntityWithoutSettingsIsCachedAsEmpty) {
  SettingsCache settings(*pool_, config());
  EXPECT_TRUE(settings.settings(99)->values().empty());
  EXPECT_THROW(settings.get<int>(99, "max_orders"), SettingNotFound);
  EXPECT_EQ(settings.stats().loads, 1u);
}

INSTANTIATE_TEST_SUITE_P(Backends, SettingsCacheTest,
                         ::testing::Values(TestBackend::kSqlite, TestBackend::kPostgreSQL),
                         [](const auto& p) { return poolscope::testing::backend_name(p.param); });

TEST(SettingsCacheConfigTest, TableAndColumnNamesMustBeSqlNames) {
  auto message = [](auto breaks) {
    return poolscope::testing::validation_error<SettingsCacheConfig>(breaks);
  };

  EXPECT_EQ(
      message([](SettingsCacheConfig& c) { c.table.table = "settings; DROP TABLE x"; }),
      "SettingsCacheConfig.table.table must be an SQL name, optionally schema.name (ASCII letters, "
      "digits, '_'; not starting with a digit) (got 'settings; DROP TABLE x')");
  EXPECT_NE(
      message([](SettingsCacheConfig& c) { c.table.key_column = "1key"; }).find("table.key_column"),
      std::string::npos);
  EXPECT_EQ(message([](SettingsCacheConfig& c) { c.table.table = "app.settings"; }), "accepted");
  EXPECT_EQ(
      message([](SettingsCacheConfig& c) { c.table.value_column = "a.b"; }),
      "SettingsCacheConfig.table.value_column must be an SQL name (ASCII letters, digits, '_'; not "
      "starting with a digit) (got 'a.b')")
      << "only the table may be qualified";
  EXPECT_NE(message([](SettingsCacheConfig& c) { c.table.table = "a.b.c"; }), "accepted");
  EXPECT_NE(message([](SettingsCacheConfig& c) { c.table.entity_column = "caf\xc3\xa9"; }),
            "accepted")
      << "ASCII only";
  EXPECT_NE(message([](SettingsCacheConfig& c) { c.table.entity_column = "caf\xe9"; }), "accepted");
  EXPECT_NE(message([](SettingsCacheConfig& c) { c.table.key_column = "key\""; }), "accepted");
}

TEST(SettingsCacheConfigTest, ValidateNamesTheSettingsCachesOwnFields) {
  auto message = [](auto breaks) {
    return poolscope::testing::validation_error<SettingsCacheConfig>(breaks);
  };

  EXPECT_EQ(message([](SettingsCacheConfig& c) { c.max_entities = 0; }),
            "SettingsCacheConfig.max_entities must be at least 1 (got 0)");
  EXPECT_EQ(message([](SettingsCacheConfig& c) { c.ttl = -1ms; }),
            "SettingsCacheConfig.ttl must not be negative (got -1 ms)");
  EXPECT_EQ(message([](SettingsCacheConfig& c) { c.name = "a b"; }),
            "SettingsCacheConfig.name must be 1 to 64 of A-Z a-z 0-9 _ . : - (got 'a b')");
}

// Whether SettingsCache::get<T> / find<T> compile.
template <class T>
concept CacheReadable = requires(SettingsCache& cache) {
  cache.get<T>(1, "k");
  cache.find<T>(1, "k");
};
template <class T>
concept SettingsReadable = requires(const Settings& settings) { settings.get<T>("k"); };

TEST(SettingsCacheTypesTest, AStringViewIsReadFromSettingsNotFromTheCache) {
  // A view into cached settings would dangle once the cache lets go of them.
  static_assert(!CacheReadable<std::string_view>);
  static_assert(CacheReadable<std::string> && CacheReadable<int> && CacheReadable<bool>);
  static_assert(SettingsReadable<std::string_view>);
  auto table = std::make_shared<const SettingsTable>();
  const Settings settings(table, 1, {{"k", "value"}});
  EXPECT_EQ(settings.get<std::string_view>("k"), "value");
  EXPECT_EQ(&settings.table(), table.get()) << "every Settings shares its cache's table";
}

TEST(SettingParseTest, BoolsIntsAndDoublesAreStrict) {
  bool b = false;
  for (const char* yes : {"true", "TRUE", "1", "yes", "On"})
    EXPECT_TRUE(parse_setting(yes, &b) && b) << yes;
  for (const char* no : {"false", "0", "no", "OFF"}) EXPECT_TRUE(parse_setting(no, &b) && !b) << no;
  EXPECT_FALSE(parse_setting("truthy", &b));
  int i = 0;
  EXPECT_TRUE(parse_setting("-42", &i));
  EXPECT_EQ(i, -42);
  EXPECT_FALSE(parse_setting("42abc", &i));
  EXPECT_FALSE(parse_setting("", &i));
  EXPECT_FALSE(parse_setting("99999999999", &i)) << "out of range for int";
  double d = 0;
  EXPECT_TRUE(parse_setting("1e-3", &d));
  EXPECT_DOUBLE_EQ(d, 0.001);
  EXPECT_FALSE(parse_setting("1.0.0", &d));
}

}  // namespace
}  // namespace poolscope::cache
