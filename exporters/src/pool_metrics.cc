#include "pool_metrics.h"

#include "collector_state.h"

namespace poolscope::exporters::detail {

PoolMetrics::PoolMetrics(Pool& pool, std::weak_ptr<CollectorState> owner,
                         std::vector<double> acquire_bounds, std::vector<double> usage_bounds,
                         std::vector<double> creation_bounds)
    : view_(pool.view()),
      name_(pool.name()),
      owner_(std::move(owner)),
      acquire_(std::move(acquire_bounds)),
      usage_(std::move(usage_bounds)),
      creation_(std::move(creation_bounds)) {}

void PoolMetrics::on_shutdown(const ShutdownEvent&) {
  if (std::shared_ptr<CollectorState> owner = owner_.lock()) owner->pool_closed(this);
}

}  // namespace poolscope::exporters::detail
