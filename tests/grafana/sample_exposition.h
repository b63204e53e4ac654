// A real poolscope exposition with every family in it (a pool, its tracer,
// a cache and, built with Redis, a Redis tier under another cache, after
// some work), for the checks that the dashboard and the
// alert rules name only metrics poolscope exports.

#pragma once

#include <set>
#include <string>

#include "capturing_sink.h"
#include "exposition.h"
#include "poolscope/exporters/metrics_collector.h"
#include "test_db.h"
#if POOLSCOPE_SAMPLE_WITH_REDIS
#include "poolscope/cache/redis/redis_tier.h"
#endif

namespace poolscope::testing {

inline std::string sample_exposition() {
  TestDatabase db(TestBackend::kSqlite);
  PoolConfig config = db.config(2);
  config.name = "dash";
  Pool pool(config);
  tracing::TracerConfig tc;
  tc.logger = CapturingSink::logger("dash").first;
  tracing::Tracer tracer(pool, tc);
  cache::TtlCache<std::string, int> configs({.name = "configs"});
  exporters::MetricsCollector metrics;
  metrics.add_pool(pool);
  metrics.add_tracer(tracer);
  metrics.add_cache(configs, "dash");
  { Lease lease = pool.acquire(); }
  configs.get_or_load("k", [](const std::string&) { return 1; });
#if POOLSCOPE_SAMPLE_WITH_REDIS
  // No Redis listens on port 1: the tier works on without it, and every
  // family is there (a test with a real Redis checks their values).
  cache::RedisTier tier({.url = "redis://127.0.0.1:1/0",
                         .prefix = "dash",
                         .connect_timeout = std::chrono::milliseconds(50)});
  cache::TtlCache<std::string, std::string> shared_configs({.name = "shared_configs"});
  auto binding = tier.attach(shared_configs);
  binding.get_or_load("k", [](const std::string&) { return std::string("v"); });
  metrics.add_cache(shared_configs, "dash");
  metrics.add_redis_tier(tier, "dash");
#endif
  return metrics.text();
}

}  // namespace poolscope::testing
