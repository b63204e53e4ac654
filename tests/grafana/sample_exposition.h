// A real poolscope exposition with every family in it (a pool, its tracer
// and a cache, after some work), for the checks that the dashboard and the
// alert rules name only metrics poolscope exports.

#pragma once

#include <set>
#include <string>

#include "capturing_sink.h"
#include "exposition.h"
#include "poolscope/exporters/metrics_collector.h"
#include "test_db.h"

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
  return metrics.text();
}

}  // namespace poolscope::testing
