#include "pool_metrics.h"

#include <chrono>

namespace poolscope::exporters::detail {

PoolMetrics::PoolMetrics(const Pool& pool, std::vector<double> acquire_bounds,
                         std::vector<double> usage_bounds, std::vector<double> creation_bounds)
    : view_(pool.view()),
      name_(pool.name()),
      checkout_timeout_s_(std::chrono::duration<double>(pool.config().checkout_timeout).count()),
      acquire_(std::move(acquire_bounds)),
      usage_(std::move(usage_bounds)),
      creation_(std::move(creation_bounds)) {}

}  // namespace poolscope::exporters::detail
