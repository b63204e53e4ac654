// Prometheus families from a Snapshot: the one place that names poolscope's
// metrics (grafana/dashboard.json and grafana/rules/ read these names; the
// dashboard lint test checks them against a real exposition).

#pragma once

#include <prometheus/metric_family.h>

#include <vector>

#include "snapshot.h"

namespace poolscope::exporters::detail {

// Families in a fixed order: the pools', the call sites', the caches', the
// Redis tiers', then poolscope_build_info.
std::vector<prometheus::MetricFamily> families_of(const Snapshot& snap);

}  // namespace poolscope::exporters::detail
