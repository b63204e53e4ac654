// CollectorState: what a MetricsCollector reports, shared (weakly) with the
// pools' observers so a pool's shutdown can take it off the list whatever
// is destroyed first.
//
// The class is thread-safe: every member below is protected by mu.

#pragma once

#include <memory>
#include <vector>

#include "pool_metrics.h"
#include "poolscope/base/mutex.h"
#include "poolscope/exporters/metrics_collector.h"

namespace poolscope::exporters::detail {

class CollectorState {
 public:
  struct PoolEntry {
    std::shared_ptr<PoolMetrics> metrics;
    Subscription subscription;  // of metrics to its pool
  };

  void pool_closed(const PoolMetrics* metrics) {
    std::vector<PoolEntry> gone;  // unsubscribed outside mu
    poolscope::detail::MutexLock lock(mu);
    for (auto it = pools.begin(); it != pools.end();) {
      if (it->metrics.get() == metrics) {
        gone.push_back(std::move(*it));
        it = pools.erase(it);
      } else {
        ++it;
      }
    }
  }

  mutable poolscope::detail::Mutex mu;
  std::vector<PoolEntry> pools POOLSCOPE_GUARDED_BY(mu);
  std::vector<const tracing::Tracer*> tracers POOLSCOPE_GUARDED_BY(mu);
  std::vector<CacheHandle> caches POOLSCOPE_GUARDED_BY(mu);
};

}  // namespace poolscope::exporters::detail
