// CollectorState: what a MetricsCollector reports. Every entry reads its
// component through a handle that knows when the component is gone (a
// PoolView, a TracerView, a cache's or Redis tier's Lifeline::Watch), so nothing here is told
// about a destruction: an entry whose component has gone is skipped by the
// scrape that finds it so, and dropped (prune()) when the list is next
// changed or read.
//
// The class is thread-safe: every member below is protected by mu.

#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pool_metrics.h"
#include "poolscope/base/lifeline.h"
#include "poolscope/base/mutex.h"
#include "poolscope/exporters/metrics_collector.h"

namespace poolscope::exporters::detail {

class CollectorState {
 public:
  struct PoolEntry {
    std::shared_ptr<PoolMetrics> metrics;
    Subscription subscription;  // of metrics to its pool
  };
  struct TracerEntry {
    const tracing::Tracer* tracer;  // identifies it for remove_tracer; never dereferenced
    tracing::TracerView view;
  };
  struct CacheEntry {
    CacheHandle handle;
    // The cache's lifeline: its functions run only under a Guard from it.
    // nullopt for a CacheHandle, whose owner keeps its functions callable.
    std::optional<poolscope::detail::Lifeline::Watch> watch;

    bool expired() const { return watch && watch->expired(); }
  };

  struct TierEntry {
    // Read (stats()) only under a Guard from watch; identifies it for
    // remove_redis_tier otherwise.
    const cache::RedisTierStatsSource* tier;
    std::string pool;
    poolscope::detail::Lifeline::Watch watch;
  };

  // Entries whose components are gone, taken off the lists; the caller
  // destroys them after releasing mu (a Subscription's end may take its
  // pool's locks).
  struct Pruned {
    std::vector<PoolEntry> pools;
  };
  Pruned prune() POOLSCOPE_REQUIRES(mu);

  mutable poolscope::detail::Mutex mu;
  std::vector<PoolEntry> pools POOLSCOPE_GUARDED_BY(mu);
  std::vector<TracerEntry> tracers POOLSCOPE_GUARDED_BY(mu);
  std::vector<CacheEntry> caches POOLSCOPE_GUARDED_BY(mu);
  std::vector<TierEntry> tiers POOLSCOPE_GUARDED_BY(mu);
};

}  // namespace poolscope::exporters::detail
