// The Redis tier across real processes: helper processes
// (poolscope-redis-helper, each with its own tier and caches) and this test
// process, on the fixture's Redis and PostgreSQL.

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>
#include <thread>

#include "poolscope/cache/redis/redis_tier.h"
#include "redis_support.h"
#include "test_db.h"
#include "test_util.h"

namespace poolscope::cache {
namespace {

using namespace std::chrono_literals;
using poolscope::testing::Child;
using poolscope::testing::eventually;
using poolscope::testing::fixture_redis;
using poolscope::testing::helper_argv;
using poolscope::testing::wait_subscribed;

// "a=1 b=2" (or "loads 1 errors 0": word pairs) as a map.
std::map<std::string, std::string> fields(const std::string& line) {
  std::map<std::string, std::string> out;
  std::istringstream in(line);
  for (std::string word; in >> word;) {
    const auto eq = word.find('=');
    if (eq != std::string::npos) {
      out[word.substr(0, eq)] = word.substr(eq + 1);
    } else if (std::string value; in >> value) {
      out[word] = value;
    }
  }
  return out;
}

long long count_of(const std::string& line, const std::string& name) {
  const auto f = fields(line);
  const auto it = f.find(name);
  if (it == f.end()) throw std::runtime_error("no " + name + " in '" + line + "'");
  return std::stoll(it->second);
}

long long epoch_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class RedisTierProcessTest : public ::testing::Test {
 protected:
  std::unique_ptr<Child> helper(const std::vector<std::string>& extra = {},
                                const std::string& db = "") {
    auto child = std::make_unique<Child>(helper_argv(fixture_redis().url(), prefix_, db, extra));
    EXPECT_EQ(child->ask("wait-connected"), "ok");
    return child;
  }
  RedisTierConfig config() const { return {.url = fixture_redis().url(), .prefix = prefix_}; }

  const std::string prefix_ = poolscope::testing::unique_prefix();
};

TEST_F(RedisTierProcessTest, ColdKeysLoadOnceAcrossTwoProcessesOf16Threads) {
  auto p1 = helper();
  auto p2 = helper();
  ASSERT_EQ(p1->ask("cache c"), "ok");
  ASSERT_EQ(p2->ask("cache c"), "ok");
  constexpr int kKeys = 10;
  long long loads = 0, errors = 0;
  for (int i = 0; i < kKeys; ++i) {
    const std::string key = "cold" + std::to_string(i);
    // Both processes' 16 threads miss the key at the same moment; the load takes 150 ms.
    const std::string command =
        "cold c " + key + " 16 150 " + std::to_string(epoch_ms() + 300) + " v-" + key;
    p1->send(command);
    p2->send(command);
    for (Child* p : {p1.get(), p2.get()}) {
      const std::string reply = p->read_line();
      loads += count_of(reply, "loads");
      errors += count_of(reply, "errors");
      EXPECT_EQ(count_of(reply, "distinct"), 1) << reply;
    }
  }
  EXPECT_EQ(errors, 0);
  EXPECT_EQ(loads, kKeys) << "one load per key for 2 processes x 16 threads";
  const long long waited =
      count_of(p1->ask("cstats c"), "lock_waited") + count_of(p2->ask("cstats c"), "lock_waited");
  EXPECT_GE(waited, kKeys / 2) << "the other process waited for the holder's value";
  std::printf("[ figure ] database loads per key, 2 processes x 16 threads: %.2f (%lld / %d)\n",
              static_cast<double>(loads) / kKeys, loads, kKeys);
  RecordProperty("loads_per_key", std::to_string(static_cast<double>(loads) / kKeys));
}

TEST_F(RedisTierProcessTest, AKilledLockHolderIsReplacedOnceItsLockExpires) {
  const std::vector<std::string> lock_ttl = {"--lock-ttl", "1500"};
  auto holder = helper(lock_ttl);
  auto waiter = helper(lock_ttl);
  ASSERT_EQ(holder->ask("cache c"), "ok");
  ASSERT_EQ(waiter->ask("cache c"), "ok");
  ASSERT_EQ(holder->ask("hold c k"), "loading");  // holds the lock, loading forever
  const auto asked = std::chrono::steady_clock::now();
  waiter->send("get c k from-waiter 0");
  std::this_thread::sleep_for(200ms);
  holder->kill(SIGKILL);
  holder->wait();
  const std::string reply = waiter->read_line(10s);
  const auto took = std::chrono::steady_clock::now() - asked;
  EXPECT_EQ(reply, "value from-waiter loads 1") << "the waiter loaded, once";
  EXPECT_GE(took, 1000ms) << "it waited for the dead holder's lock to expire";
  EXPECT_LE(took, 2500ms) << "and not much longer than the lock's 1.5 s";
  const std::string s = waiter->ask("cstats c");
  EXPECT_EQ(count_of(s, "lock_waited"), 1) << s;
  EXPECT_EQ(count_of(s, "lock_expired"), 1) << s;
  EXPECT_EQ(count_of(s, "lock_acquired"), 1) << s;
  // Its value is Redis's now: a third process reads it without loading.
  auto third = helper(lock_ttl);
  ASSERT_EQ(third->ask("cache c"), "ok");
  EXPECT_EQ(third->ask("get c k from-third 0"), "value from-waiter loads 0");
}

TEST_F(RedisTierProcessTest, PrefixAndGlobInvalidationsReachEveryProcess) {
  auto b = helper();
  auto c = helper();
  RedisTier tier(config());
  TtlCache<std::string, std::string> local({.name = "c"});
  RedisBinding shared = tier.attach(local);
  wait_subscribed(tier);
  for (Child* p : {b.get(), c.get()}) {
    ASSERT_EQ(p->ask("cache c"), "ok");
    for (const char* k : {"pair:1", "pair:22", "user:1", "user:22", "other"}) {
      ASSERT_EQ(p->ask(std::string("get c ") + k + " v 0").substr(0, 8), "value v ");
    }
  }
  const auto received = [](Child& p, long long n) {
    return eventually([&] { return count_of(p.ask("stats"), "received") >= n; });
  };
  local.invalidate_prefix("pair:");
  for (Child* p : {b.get(), c.get()}) {
    ASSERT_TRUE(received(*p, 1));
    EXPECT_EQ(p->ask("peek c pair:1"), "miss");
    EXPECT_EQ(p->ask("peek c pair:22"), "miss");
    EXPECT_EQ(p->ask("peek c user:1"), "hit v");
  }
  local.invalidate_glob("user:?");
  for (Child* p : {b.get(), c.get()}) {
    ASSERT_TRUE(received(*p, 2));
    EXPECT_EQ(p->ask("peek c user:1"), "miss");
    EXPECT_EQ(p->ask("peek c user:22"), "hit v") << "'?' is one character";
  }
  // From a helper to the others, this process included.
  shared.get_or_load("other", [](const std::string&) { return std::string("v"); });
  ASSERT_EQ(b->ask("glob c oth*"), "ok");
  ASSERT_TRUE(received(*c, 3));
  EXPECT_EQ(c->ask("peek c other"), "miss");
  EXPECT_EQ(c->ask("peek c user:22"), "hit v");
  EXPECT_TRUE(eventually([&] { return !local.get("other"); }));
}

TEST_F(RedisTierProcessTest, ASaveInOneProcessIsWhatTheOthersReadAfterTheBroadcast) {
  fixture_redis();
  poolscope::testing::TestDatabase db(poolscope::testing::TestBackend::kPostgreSQL);
  Pool pool(db.config(2));
  {
    Lease sql = pool.acquire();
    *sql << "CREATE TABLE account_settings (account_id INTEGER NOT NULL,"
            " setting_key VARCHAR(64) NOT NULL, setting_value VARCHAR(256) NOT NULL,"
            " PRIMARY KEY (account_id, setting_key))";
    *sql << "INSERT INTO account_settings VALUES (1, 'api_key', 'v0')";
  }
  auto b = helper({}, db.url());
  ASSERT_EQ(b->ask("settings s"), "ok");
  ASSERT_EQ(b->ask("read s 1 api_key"), "value v0");
  auto tier = std::make_shared<RedisTier>(config());
  SettingsCache a(pool,
                  {.name = "s",
                   .table = {"account_settings", "account_id", "setting_key", "setting_value"},
                   .shared_tier = tier});
  wait_subscribed(*tier);
  EXPECT_EQ(a.get<std::string>(1, "api_key"), "v0");
  std::vector<double> staleness_ms;
  for (int i = 1; i <= 20; ++i) {
    const std::string value = "v" + std::to_string(i);
    a.save(1, "api_key", value);
    const auto committed = std::chrono::steady_clock::now();
    // B's next read once the broadcast arrived returns the new value.
    ASSERT_TRUE(eventually([&] { return count_of(b->ask("stats"), "received") >= i; }));
    EXPECT_EQ(b->ask("read s 1 api_key"), "value " + value);
    staleness_ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - committed)
            .count());
    EXPECT_EQ(a.get<std::string>(1, "api_key"), value);
  }
  std::sort(staleness_ms.begin(), staleness_ms.end());
  EXPECT_LT(staleness_ms.back(), 1000.0) << "milliseconds, not a TTL";
  std::printf(
      "[ figure ] save in A -> B reads it (broadcast + read), 20 saves: p50 %.1f ms, max "
      "%.1f ms\n",
      staleness_ms[staleness_ms.size() / 2], staleness_ms.back());
}

}  // namespace
}  // namespace poolscope::cache
