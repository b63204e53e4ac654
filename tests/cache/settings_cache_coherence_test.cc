// Objects built from a SettingsCache stay coherent with it by themselves:
// the README's accounts, a save, and the next get, in this process and when
// the invalidation comes from another one (TtlCache::apply, as the Redis
// tier's subscriber calls it).

#include <gtest/gtest.h>
#include <soci/soci.h>

#include <atomic>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "poolscope/cache/instance_cache.h"
#include "poolscope/cache/settings_cache.h"
#include "settings_fixture.h"

namespace poolscope::cache {
namespace {

using namespace std::chrono_literals;
using testing::SettingsCacheTest;

// The README's account: its constructor reads its settings once.
class Account {
 public:
  Account(int id, SettingsCache& settings)
      : id_(id),
        api_key_(settings.get<std::string>(id, "api_key")),
        paper_(settings.get<bool>(id, "paper_account")) {}
  int id() const { return id_; }
  const std::string& api_key() const { return api_key_; }
  bool paper() const { return paper_; }

 private:
  int id_;
  std::string api_key_;
  bool paper_;
};

// Another process's write: straight to the database, no cache told.
void write_elsewhere(const poolscope::testing::TestDatabase& db, int account,
                     const std::string& value) {
  *db.open_session() << "UPDATE account_settings SET setting_value = :v WHERE account_id = :a "
                        "AND setting_key = 'api_key'",
      soci::use(value), soci::use(account);
}

TEST_P(SettingsCacheTest, TheReadmesAccountSeesASaveOnTheNextGet) {
  SettingsCache settings(*pool_, config());
  InstanceCache<int, Account> accounts(
      [&](const int& id) { return std::make_shared<Account>(id, settings); });
  const std::shared_ptr<Account> before = accounts.get(1);
  const std::shared_ptr<Account> other = accounts.get(2);
  EXPECT_EQ(before->api_key(), "key-1");
  EXPECT_EQ(accounts.get(1), before) << "one instance per id";

  settings.save(1, "api_key", "key-2");
  const std::shared_ptr<Account> after = accounts.get(1);
  EXPECT_NE(after, before) << "the account built from the old settings was evicted";
  EXPECT_EQ(after->api_key(), "key-2");
  EXPECT_EQ(before->api_key(), "key-1") << "holders keep the instance they have";
  EXPECT_EQ(accounts.get(2), other) << "account 2's settings did not change";
  EXPECT_EQ(accounts.get(1), after);
}

TEST_P(SettingsCacheTest, AnInvalidationAppliedFromAnotherProcessEvictsTheAccount) {
  SettingsCache settings(*pool_, config());
  InstanceCache<int, Account> accounts(
      [&](const int& id) { return std::make_shared<Account>(id, settings); });
  int bus = 0;  // what this process would broadcast
  const Subscription to_bus =
      settings.cache().add_invalidation_listener([&](const auto&) { ++bus; });
  EXPECT_EQ(accounts.get(1)->api_key(), "key-1");
  EXPECT_EQ(accounts.get(2)->api_key(), "key-1");

  write_elsewhere(*db_, 1, "key-remote");  // saved by another process...
  settings.cache().apply({Invalidation<std::int64_t>::Kind::kKey, 1, {}});  // ...which said so
  EXPECT_EQ(accounts.get(1)->api_key(), "key-remote");
  EXPECT_EQ(accounts.get(2)->api_key(), "key-1");

  write_elsewhere(*db_, 2, "key-remote-2");
  settings.cache().apply({Invalidation<std::int64_t>::Kind::kAll, std::nullopt, {}});
  EXPECT_EQ(accounts.get(2)->api_key(), "key-remote-2");
  EXPECT_EQ(bus, 0) << "an applied invalidation must not echo back onto the bus";
}

TEST_P(SettingsCacheTest, ASaveWhileAnAccountIsBeingBuiltLeavesNoStaleAccountCached) {
  SettingsCache settings(*pool_, config());
  std::promise<void> read_key, saved;
  std::atomic<int> builds{0};
  InstanceCache<int, Account> accounts([&](const int& id) {
    auto account = std::make_shared<Account>(id, settings);  // reads the old key
    if (builds.fetch_add(1) == 0) {
      read_key.set_value();
      saved.get_future().wait();
    }
    return account;
  });
  auto first = std::async(std::launch::async, [&] { return accounts.get(1); });
  read_key.get_future().wait();
  settings.save(1, "api_key", "key-2");  // commits, then invalidates, mid-build
  saved.set_value();
  EXPECT_EQ(first.get()->api_key(), "key-1") << "the caller gets what it built...";
  EXPECT_EQ(accounts.get(1)->api_key(), "key-2") << "...but nobody after the save does";
  EXPECT_EQ(builds.load(), 2);
}

TEST_P(SettingsCacheTest, ASaveEvictsTheAccountEvenOnceItsSettingsLeftTheCache) {
  SettingsCacheConfig one = config();
  one.max_entities = 1;
  SettingsCache settings(*pool_, one);
  InstanceCache<int, Account> accounts(
      [&](const int& id) { return std::make_shared<Account>(id, settings); });
  const auto first = accounts.get(1);
  accounts.get(2);  // settings of 2 push those of 1 out of the settings cache
  EXPECT_EQ(settings.stats().evictions_capacity, 1u);
  EXPECT_EQ(accounts.get(1), first);
  settings.save(1, "api_key", "key-2");
  EXPECT_EQ(accounts.get(1)->api_key(), "key-2");
}

TEST_P(SettingsCacheTest, InvalidatingOrClearingSettingsEvictsTheAccountsBuiltFromThem) {
  SettingsCache settings(*pool_, config());
  InstanceCache<int, Account> accounts(
      [&](const int& id) { return std::make_shared<Account>(id, settings); });
  const auto one = accounts.get(1), two = accounts.get(2);
  write_elsewhere(*db_, 1, "key-9");
  settings.invalidate(1);
  EXPECT_EQ(accounts.get(1)->api_key(), "key-9");
  EXPECT_EQ(accounts.get(2), two);
  settings.clear();
  EXPECT_NE(accounts.get(2), two);
  EXPECT_EQ(accounts.stats().evictions_invalidated, 3u) << "1, then 1 again and 2";
}

TEST_P(SettingsCacheTest, AnAccountLivesNoLongerThanTheSettingsItWasBuiltFrom) {
  // Without a bus, settings written elsewhere show after the settings TTL:
  // so must the accounts built from them.
  auto clock = std::make_shared<ManualClock>();
  SettingsCacheConfig c = config();
  c.ttl = 60s;
  c.clock = clock;
  SettingsCache settings(*pool_, c);
  InstanceCache<int, Account> accounts(
      [&](const int& id) { return std::make_shared<Account>(id, settings); }, {.clock = clock});
  const auto first = accounts.get(1);
  write_elsewhere(*db_, 1, "key-later");
  clock->advance(59s);
  EXPECT_EQ(accounts.get(1), first);
  clock->advance(2s);
  EXPECT_EQ(accounts.get(1)->api_key(), "key-later");
}

TEST_P(SettingsCacheTest, ConcurrentSavesNeverLeaveAnAccountOlderThanTheLastCommit) {
  SettingsCache settings(*pool_, config());
  InstanceCache<int, Account> accounts(
      [&](const int& id) { return std::make_shared<Account>(id, settings); });
  const auto version_of = [](const std::string& key) { return std::stoi(key.substr(4)); };
  settings.save(1, "api_key", "key-0");
  std::atomic<int> committed{0}, stale{0}, reads{0};
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int version = 1; !stop.load(); ++version) {
      settings.save(1, "api_key", "key-" + std::to_string(version));
      committed.store(version);
      if (version_of(accounts.get(1)->api_key()) < version) stale.fetch_add(1);
      std::this_thread::sleep_for(2ms);
    }
  });
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        const int floor = committed.load();
        if (version_of(accounts.get(1)->api_key()) < floor) stale.fetch_add(1);
        reads.fetch_add(1);
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

}  // namespace
}  // namespace poolscope::cache
