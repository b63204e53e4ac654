// --redis: the Redis tier (poolscope::cache_redis) under one run's caches.
// The SettingsCache gets it as its shared_tier, the accounts InstanceCache
// sends its evictions through it, and the figures come from its stats().
// Every worker process of --processes makes its own tier on the same Redis
// and prefix, after the fork (a tier runs a subscriber thread).
//
// A RunRedis is made, used and destroyed on a run's thread; what it hands
// out (the tier, its Subscription) is thread-safe.

#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "poolscope/base/subscription.h"
#include "poolscope/cache/instance_cache.h"
#include "poolscope/cache/settings_cache.h"

namespace spdlog {
class logger;
}

namespace poolscope::cache {
class RedisTier;
}

namespace poolscope::exporters {
class MetricsCollector;
}

namespace poolscope::load {

class Account;

// What the tier did during a run, for the summary and the JSON.
struct RedisFigures {
  std::string url;               // redacted
  std::string state;             // up, backing_off, probing (at the end)
  std::uint64_t redis_hits = 0;  // local misses Redis answered (every cache)
  std::uint64_t redis_misses = 0;
  std::uint64_t database_loads = 0;  // the settings cache's loads through its loader
  std::uint64_t fallback_loads = 0;  // of them, made without Redis (it was unavailable)
  std::uint64_t lock_acquired = 0, lock_waited = 0, lock_expired = 0;
  std::uint64_t calls = 0, errors = 0, timeouts = 0, skipped = 0;
  std::uint64_t breaker_opened = 0, breaker_closed = 0;
  std::uint64_t invalidations_published = 0, invalidations_received = 0;
  std::uint64_t subscriber_flushes = 0;
};

class RunRedis {
 public:
  // Throws poolscope::BadUrl for a bad URL, std::invalid_argument for a bad
  // prefix, std::logic_error when poolscope-load was built without Redis.
  // A Redis that is down is no error: the tier connects when it can.
  RunRedis(const std::string& url, const std::string& prefix,
           std::shared_ptr<spdlog::logger> logger);
  ~RunRedis();
  RunRedis(const RunRedis&) = delete;
  RunRedis& operator=(const RunRedis&) = delete;

  // For SettingsCacheConfig::shared_tier.
  std::shared_ptr<cache::SettingsTier> settings_tier() const;
  // The accounts' evictions (evict, clear) reach every process until it ends.
  Subscription attach(cache::InstanceCache<int, const Account>& accounts);
  // Registers the tier's families (--metrics, --print-stats).
  void add_to(exporters::MetricsCollector& metrics, const std::string& pool) const;
  RedisFigures figures() const;

 private:
  std::shared_ptr<cache::RedisTier> tier_;
};

// Whether url is a Redis URL poolscope can use: empty, or the reason (the
// URL redacted in it).
std::string redis_url_problem(const std::string& url);
// url with its password as "***".
std::string redact_redis_url(const std::string& url);

}  // namespace poolscope::load
