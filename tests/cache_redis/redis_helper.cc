// poolscope-redis-helper: one process of a "service" for the Redis tier's
// cross-process tests. It holds a RedisTier, string caches and settings
// caches attached to it, and runs the commands the test sends on stdin, one
// reply line each on stdout:
//
//   cache NAME                          a TtlCache<string, string> attached to the tier
//   get NAME KEY VALUE LOAD_MS          get_or_load; the loader sleeps, returns VALUE
//                                       -> "value V loads N" (N: loader runs so far)
//   hold NAME KEY                       a load whose loader prints "loading" and never ends
//   cold NAME KEY THREADS LOAD_MS AT_MS VALUE
//                                       THREADS threads miss KEY at once at AT_MS (Unix
//                                       epoch ms) -> "loads N errors E distinct D"
//   peek NAME KEY                       the local cache only -> "hit V" or "miss"
//   erase|prefix|glob NAME TEXT, clear NAME
//   settings NAME                       a SettingsCache on account_settings (needs --db)
//   read NAME ENTITY KEY                -> "value V" or "error TEXT"
//   save NAME ENTITY KEY VALUE
//   stats / cstats NAME                 the tier's / one cache's counters, as key=value
//   wait-connected                      until the subscriber is subscribed
//   quit
//
//   poolscope-redis-helper --redis URL --prefix P [--db URL] [--lock-ttl MS] [--timeout MS]

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "poolscope/cache/redis/redis_tier.h"
#include "poolscope/pool/pool.h"

namespace {

using namespace poolscope;
using namespace poolscope::cache;
using namespace std::chrono_literals;

struct StringCache {
  explicit StringCache(const std::string& name) : cache({.name = name, .ttl = 60s}) {}
  TtlCache<std::string, std::string> cache;
  std::optional<RedisBinding<std::string, std::string>> binding;
  std::atomic<int> loads{0};
};

struct Helper {
  std::shared_ptr<RedisTier> tier;
  std::unique_ptr<Pool> pool;
  std::map<std::string, std::unique_ptr<StringCache>> caches;
  std::map<std::string, std::unique_ptr<SettingsCache>> settings;

  StringCache& cache(const std::string& name) {
    auto it = caches.find(name);
    if (it == caches.end()) throw std::runtime_error("no cache " + name);
    return *it->second;
  }
  SettingsCache& settings_cache(const std::string& name) {
    auto it = settings.find(name);
    if (it == settings.end()) throw std::runtime_error("no settings cache " + name);
    return *it->second;
  }
};

void reply(const std::string& line) {
  std::cout << line << std::endl;  // flushed: the test waits for it
}

std::string slow_value(StringCache& c, const std::string& value, int load_ms) {
  c.loads.fetch_add(1);
  std::this_thread::sleep_for(std::chrono::milliseconds(load_ms));
  return value;
}

std::string cold(Helper& h, std::istringstream& in) {
  std::string name, key, value;
  int threads = 0, load_ms = 0;
  long long at_ms = 0;
  in >> name >> key >> threads >> load_ms >> at_ms >> value;
  StringCache& c = h.cache(name);
  const int before = c.loads.load();
  const auto at = std::chrono::system_clock::time_point(std::chrono::milliseconds(at_ms));
  std::atomic<int> errors{0};
  std::mutex mu;
  std::set<std::string> seen;
  std::vector<std::thread> workers;
  for (int i = 0; i < threads; ++i) {
    workers.emplace_back([&] {
      std::this_thread::sleep_until(at);
      try {
        std::string v = c.binding->get_or_load(
            key, [&](const std::string&) { return slow_value(c, value, load_ms); });
        std::lock_guard lock(mu);
        seen.insert(v);
      } catch (...) {
        errors.fetch_add(1);
      }
    });
  }
  for (std::thread& t : workers) t.join();
  return "loads " + std::to_string(c.loads.load() - before) + " errors " +
         std::to_string(errors.load()) + " distinct " + std::to_string(seen.size());
}

std::string tier_stats(const RedisTier& tier) {
  const RedisTierStats s = tier.stats();
  std::ostringstream out;
  out << "connected=" << s.subscriber_connected << " connects=" << s.subscriber_connects
      << " flushes=" << s.subscriber_flushes << " received=" << s.invalidations_received
      << " published=" << s.invalidations_published << " pending=" << s.invalidations_pending
      << " errors=" << s.errors << " timeouts=" << s.timeouts << " state=" << to_string(s.state)
      << " opened=" << s.breaker_opened << " closed=" << s.breaker_closed;
  return out.str();
}

std::string cache_stats(const RedisTier& tier, const std::string& name) {
  for (const RedisCacheTierStats& c : tier.stats().caches) {
    if (c.cache != name) continue;
    std::ostringstream out;
    out << "redis_hits=" << c.redis_hits << " redis_misses=" << c.redis_misses
        << " loads=" << c.loads << " fallback_loads=" << c.fallback_loads
        << " lock_acquired=" << c.lock_acquired << " lock_waited=" << c.lock_waited
        << " lock_expired=" << c.lock_expired << " received=" << c.invalidations_received
        << " local_hits=" << c.local_hits;
    return out.str();
  }
  return "error no such cache";
}

std::string run(Helper& h, const std::string& line) {
  std::istringstream in(line);
  std::string command, name, key, text;
  in >> command;
  if (command == "cache") {
    in >> name;
    auto c = std::make_unique<StringCache>(name);
    c->binding.emplace(h.tier->attach(c->cache));
    h.caches[name] = std::move(c);
  } else if (command == "get") {
    int load_ms = 0;
    in >> name >> key >> text >> load_ms;
    StringCache& c = h.cache(name);
    const std::string v = c.binding->get_or_load(
        key, [&](const std::string&) { return slow_value(c, text, load_ms); });
    return "value " + v + " loads " + std::to_string(c.loads.load());
  } else if (command == "hold") {
    in >> name >> key;
    StringCache& c = h.cache(name);
    c.binding->get_or_load(key, [&](const std::string&) -> std::string {
      c.loads.fetch_add(1);
      reply("loading");
      for (;;) std::this_thread::sleep_for(1h);  // until the test kills us
    });
  } else if (command == "cold") {
    return cold(h, in);
  } else if (command == "peek") {
    in >> name >> key;
    const std::optional<std::string> v = h.cache(name).cache.get(key);
    return v ? "hit " + *v : "miss";
  } else if (command == "erase" || command == "prefix" || command == "glob") {
    in >> name >> text;
    auto& cache = h.cache(name).cache;
    if (command == "erase") cache.erase(text);
    if (command == "prefix") cache.invalidate_prefix(text);
    if (command == "glob") cache.invalidate_glob(text);
  } else if (command == "clear") {
    in >> name;
    h.cache(name).cache.clear();
  } else if (command == "settings") {
    in >> name;
    if (h.pool == nullptr) throw std::runtime_error("no --db");
    h.settings[name] = std::make_unique<SettingsCache>(
        *h.pool, SettingsCacheConfig{
                     .name = name,
                     .table = {"account_settings", "account_id", "setting_key", "setting_value"},
                     .shared_tier = h.tier});
  } else if (command == "read") {
    long long entity = 0;
    in >> name >> entity >> key;
    return "value " + h.settings_cache(name).get<std::string>(entity, key);
  } else if (command == "save") {
    long long entity = 0;
    in >> name >> entity >> key >> text;
    h.settings_cache(name).save(entity, key, text);
  } else if (command == "stats") {
    return tier_stats(*h.tier);
  } else if (command == "cstats") {
    in >> name;
    return cache_stats(*h.tier, name);
  } else if (command == "wait-connected") {
    for (int i = 0; i < 1000 && !h.tier->stats().subscriber_connected; ++i) {
      std::this_thread::sleep_for(10ms);
    }
    return h.tier->stats().subscriber_connected ? "ok" : "timeout";
  } else {
    return "error unknown command '" + command + "'";
  }
  return "ok";
}

}  // namespace

int main(int argc, char** argv) {
  RedisTierConfig config;
  std::string db;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--redis") config.url = value;
    if (flag == "--prefix") config.prefix = value;
    if (flag == "--db") db = value;
    if (flag == "--lock-ttl") config.lock_ttl = std::chrono::milliseconds(std::stoll(value));
    if (flag == "--timeout") config.timeout = std::chrono::milliseconds(std::stoll(value));
  }
  Helper h;
  try {
    h.tier = std::make_shared<RedisTier>(config);
    if (!db.empty()) h.pool = std::make_unique<Pool>(PoolConfig{.url = db, .pool_size = 4});
  } catch (const std::exception& e) {
    std::cerr << "helper: " << e.what() << "\n";
    return 1;
  }
  for (std::string line; std::getline(std::cin, line);) {
    if (line == "quit") break;
    try {
      reply(run(h, line));
    } catch (const std::exception& e) {
      reply("error " + std::string(e.what()));
    }
  }
  return 0;
}
