// Snapshot: the components' statistics at one moment, read under the
// collector's mutex (each component through its handle, so a component being
// destroyed is skipped, never read) and rendered after, as Prometheus
// families or as JSON.

#pragma once

#include <memory>
#include <string>
#include <vector>

#include "collector_state.h"
#include "histogram.h"
#include "poolscope/cache/cache_stats.h"
#include "poolscope/pool/pool_stats.h"
#include "poolscope/tracing/tracer.h"

namespace poolscope::cache {
struct RedisTierStats;  // poolscope/cache/redis/redis_stats.h
}

namespace poolscope::exporters::detail {

struct Snapshot {
  struct Histogram {
    const std::vector<double>* bounds = nullptr;  // owned by PoolEntry::metrics
    AtomicHistogram::Snapshot counts;
  };
  struct PoolEntry {
    PoolStats stats;
    double checkout_timeout_s = 0;
    std::uint64_t leaks = 0;  // from the tracer's table of the pool, if any
    // Filled with histograms only.
    std::shared_ptr<const PoolMetrics> metrics;  // keeps the bounds alive
    Histogram acquire, usage, creation;
  };
  struct CacheEntry {
    std::string name;
    std::string pool;
    cache::CacheStats stats;
  };
  struct TierEntry {
    std::string pool;
    std::shared_ptr<const cache::RedisTierStats> stats;  // never null
  };
  std::vector<PoolEntry> pools;
  std::vector<tracing::PoolSites> sites;  // one table per pool
  std::vector<CacheEntry> caches;
  std::vector<TierEntry> tiers;     // Redis tiers
  std::vector<std::string> errors;  // components left out, and why
};

// Reads every live component of state; drops the entries of those gone.
// Throws only what allocation throws: a component that throws is listed in
// errors instead.
Snapshot take_snapshot(CollectorState& state, bool histograms);

}  // namespace poolscope::exporters::detail
