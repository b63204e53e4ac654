// CollectorState: what a MetricsCollector reports, shared (weakly) with the
// pools' observers so a pool's shutdown can take it off the list whatever
// is destroyed first.
//
// The class is thread-safe: every member below is protected by mu.

#pragma once

#include <memory>
#include <vector>

#include "pool_metrics.h"
#include "poolscope/exporters/metrics_collector.h"
#include "poolscope/pool/mutex.h"

namespace poolscope::exporters::detail {

class CollectorState {
 public:
  void pool_closed(const PoolMetrics* metrics) {
    poolscope::detail::MutexLock lock(mu);
    std::erase_if(pools, [metrics](const auto& p) { return p.get() == metrics; });
  }

  mutable poolscope::detail::Mutex mu;
  std::vector<std::shared_ptr<PoolMetrics>> pools POOLSCOPE_GUARDED_BY(mu);
  std::vector<const tracing::Tracer*> tracers POOLSCOPE_GUARDED_BY(mu);
  std::vector<CacheHandle> caches POOLSCOPE_GUARDED_BY(mu);
};

}  // namespace poolscope::exporters::detail
