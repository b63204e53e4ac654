// The README's C++ snippets, verbatim (check_snippets.py holds the two in
// step), each where a host program would put it: at namespace scope or in a
// function that gets what the README's earlier snippets declared. Built with
// -Wall -Wextra -Werror (including -Wmissing-field-initializers, which a
// designated initializer trips when a config field has no default), never
// run: it has no main() and is compiled as an object library.
// The snippets keep the README's own layout:
// clang-format off

#include <poolscope/cache/instance_cache.h>
#include <poolscope/cache/redis/redis_tier.h>
#include <poolscope/cache/settings_cache.h>
#include <poolscope/exporters/metrics_server.h>
#include <poolscope/pool/pool.h>
#include <poolscope/tracing/tracer.h>
#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>

#include <chrono>
#include <memory>
#include <string>

using namespace std::chrono_literals;

// Quick start.
namespace readme_quick_start {

poolscope::Pool pool({.url = "postgresql://app:secret@db:5432/app", .pool_size = 10});

void save(const std::string& key, const std::string& value) {
  poolscope::Lease lease = pool.acquire();   // records this file, function and line
  soci::session& sql = *lease;               // the statements below do not change
  sql << "update settings set value = :v where key = :k", soci::use(value), soci::use(key);
}

}  // namespace readme_quick_start

// A Pool from what SOCI users already have.
namespace readme_from_soci {

poolscope::Pool pool(soci::postgresql, "host=db dbname=app user=app", {.pool_size = 10});

}  // namespace readme_from_soci

namespace readme {

// What the caches' snippet says an Account is.
class Account {
 public:
  Account(int id, poolscope::cache::SettingsCache& s)
      : api_key_(s.get<std::string>(id, "api_key")), paper_(s.get<bool>(id, "paper_account")) {}
  const std::string& api_key() const { return api_key_; }
  bool paper() const { return paper_; }

 private:
  std::string api_key_;
  bool paper_;
};

std::string load_config(const std::string& key) { return "config of " + key; }

}  // namespace readme

using readme::Account;
using readme::load_config;

void readme_tracing(poolscope::Pool& pool) {
  poolscope::tracing::Tracer tracer(pool);   // or Tracer(pool, {.leak_threshold = 10s, ...})
}

void readme_caches(poolscope::Pool& pool, int account_id, const std::string& key, int id,
                   const std::string& new_key) {
  poolscope::cache::SettingsCache settings(pool, {
      .name = "account_settings",
      .table = {"account_settings", "account_id", "setting_key", "setting_value"}});
  bool paper = settings.get<bool>(account_id, "paper_account");  // one query per account, then hits
  settings.save(account_id, "api_key", key);                       // write-through, then invalidate

  // Account(int id, SettingsCache& s) reads its settings in its constructor:
  //   api_key_(s.get<std::string>(id, "api_key")), paper_(s.get<bool>(id, "paper_account"))
  poolscope::cache::InstanceCache<int, Account> accounts(
      [&](const int& id) { return std::make_shared<Account>(id, settings); });
  std::shared_ptr<Account> a = accounts.get(id);                   // one instance per id
  settings.save(id, "api_key", new_key);                           // evicts account id as well
  accounts.get(id)->api_key();                                     // a new Account: new_key
  static_cast<void>(paper);
}

void readme_redis(poolscope::Pool& pool, poolscope::cache::InstanceCache<int, Account>& accounts) {
  using namespace poolscope::cache;

  auto redis = std::make_shared<RedisTier>(RedisTierConfig{
      .url = "redis://:secret@cache:6379/0", .prefix = "tradecore"});

  SettingsCache settings(pool, {.name = "account_settings", .table = {.table = "account_settings"},
                                .shared_tier = redis});     // a SettingsCache: one field

  TtlCache<std::string, std::string> configs({.name = "config", .ttl = 5min});
  RedisBinding shared = redis->attach(configs);           // a TtlCache: attach, read through it
  std::string c = shared.get_or_load("pair:ETH/USDT", load_config);
  configs.invalidate_glob("pair:*");                      // here, in Redis, in every process

  poolscope::Subscription evictions = redis->attach(accounts);  // an InstanceCache: evictions travel
}

void readme_metrics(poolscope::Pool& pool, poolscope::tracing::Tracer& tracer,
                    poolscope::cache::SettingsCache& settings) {
  auto metrics = std::make_shared<poolscope::exporters::MetricsCollector>();
  metrics->add_pool(pool);
  metrics->add_tracer(tracer);       // call sites, leaks
  metrics->add_cache(settings);      // any TtlCache, InstanceCache or SettingsCache
  poolscope::exporters::MetricsServer server(metrics);   // http://127.0.0.1:9464/metrics
}
