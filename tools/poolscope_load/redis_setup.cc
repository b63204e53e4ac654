#include "redis_setup.h"

#include "poolscope/base/error.h"
#include "poolscope/cache/redis/redis_tier.h"
#include "poolscope/cache/redis/redis_url.h"
#include "poolscope/exporters/metrics_collector.h"
#include "widget.h"

namespace poolscope::load {

RunRedis::RunRedis(const std::string& url, const std::string& prefix,
                   std::shared_ptr<spdlog::logger> logger) {
  cache::RedisTierConfig config;
  config.url = url;
  config.prefix = prefix;
  config.logger = std::move(logger);
  tier_ = std::make_shared<cache::RedisTier>(std::move(config));
}

RunRedis::~RunRedis() = default;

std::shared_ptr<cache::SettingsTier> RunRedis::settings_tier() const { return tier_; }

Subscription RunRedis::attach(cache::InstanceCache<int, const Account>& accounts) {
  return tier_->attach(accounts);
}

void RunRedis::add_to(exporters::MetricsCollector& metrics, const std::string& pool) const {
  metrics.add_redis_tier(*tier_, pool);
}

RedisFigures RunRedis::figures() const {
  const cache::RedisTierStats s = tier_->stats();
  RedisFigures f;
  f.url = s.url;
  f.state = cache::to_string(s.state);
  f.calls = s.calls;
  f.errors = s.errors;
  f.timeouts = s.timeouts;
  f.skipped = s.skipped;
  f.breaker_opened = s.breaker_opened;
  f.breaker_closed = s.breaker_closed;
  f.invalidations_published = s.invalidations_published;
  f.invalidations_received = s.invalidations_received;
  f.subscriber_flushes = s.subscriber_flushes;
  for (const cache::RedisCacheTierStats& c : s.caches) {
    f.redis_hits += c.redis_hits;
    f.redis_misses += c.redis_misses;
    f.lock_acquired += c.lock_acquired;
    f.lock_waited += c.lock_waited;
    f.lock_expired += c.lock_expired;
    if (c.cache == "account_settings") {
      f.database_loads = c.loads;
      f.fallback_loads = c.fallback_loads;
    }
  }
  return f;
}

std::string redis_url_problem(const std::string& url) {
  try {
    cache::RedisUrl::parse(url);
    return {};
  } catch (const std::exception& e) {
    return e.what();  // BadUrl's message shows the URL redacted
  }
}

std::string redact_redis_url(const std::string& url) {
  try {
    return cache::RedisUrl::parse(url).redacted();
  } catch (const std::exception&) {
    return "(a malformed Redis URL)";
  }
}

}  // namespace poolscope::load
