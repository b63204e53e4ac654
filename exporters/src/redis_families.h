// The Redis tiers' part of a scrape (MetricsCollector::add_redis_tier):
// reading them into a Snapshot, their poolscope_redis_* families and their
// JSON. Built on poolscope::cache_redis_stats alone (never hiredis); in a
// poolscope built without Redis no tier can be added, and these do nothing.
//
// Called with the collector's state as snapshot.h and families.h say.

#pragma once

#include <nlohmann/json.hpp>

#include "collector_state.h"
#include "family_builder.h"
#include "snapshot.h"

namespace poolscope::exporters::detail {

// Reads every live tier of state (each under a Guard from its watch).
void read_tiers(const CollectorState& state, Snapshot& snap) POOLSCOPE_REQUIRES(state.mu);

void add_tier_families(FamilyBuilder& out, const Snapshot::TierEntry& tier);

// [{"prefix": ..., "pool": ..., "url": redacted, "state": ..., ...}, ...]
nlohmann::json tiers_json(const Snapshot& snap);

}  // namespace poolscope::exporters::detail
