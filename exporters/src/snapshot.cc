#include "snapshot.h"

#include <exception>
#include <set>

#include "poolscope/base/error.h"
#include "redis_families.h"

namespace poolscope::exporters::detail {

CollectorState::Pruned CollectorState::prune() {
  Pruned gone;
  for (auto it = pools.begin(); it != pools.end();) {
    if (it->metrics->view().expired()) {
      gone.pools.push_back(std::move(*it));
      it = pools.erase(it);
    } else {
      ++it;
    }
  }
  std::erase_if(tracers, [](const TracerEntry& t) { return t.view.expired(); });
  std::erase_if(caches, [](const CacheEntry& c) { return c.expired(); });
  std::erase_if(tiers, [](const TierEntry& t) { return t.watch.expired(); });
  return gone;
}

namespace {

void read_sites(const CollectorState& state, Snapshot& snap) POOLSCOPE_REQUIRES(state.mu) {
  std::set<std::string> seen;  // a pool traced twice is reported once
  for (const CollectorState::TracerEntry& t : state.tracers) {
    try {
      std::optional<std::vector<tracing::PoolSites>> tables = t.view.pool_sites();
      if (!tables) continue;  // the tracer is being destroyed
      for (tracing::PoolSites& table : *tables) {
        if (seen.insert(table.pool).second) snap.sites.push_back(std::move(table));
      }
    } catch (...) {
      snap.errors.push_back("call sites: " + exception_text(std::current_exception()));
    }
  }
}

void read_pools(const CollectorState& state, bool histograms, Snapshot& snap)
    POOLSCOPE_REQUIRES(state.mu) {
  for (const CollectorState::PoolEntry& p : state.pools) {
    const PoolMetrics& pm = *p.metrics;
    try {
      std::optional<PoolStats> stats = pm.view().stats();
      if (!stats) continue;  // the pool is being destroyed
      Snapshot::PoolEntry entry{std::move(*stats), pm.checkout_timeout_seconds()};
      for (const tracing::PoolSites& t : snap.sites) {
        if (t.pool == pm.name()) entry.leaks = t.leaks_reported;
      }
      if (histograms) {
        entry.metrics = p.metrics;
        entry.acquire = {&pm.acquire().bounds(), pm.acquire().snapshot()};
        entry.usage = {&pm.usage().bounds(), pm.usage().snapshot()};
        entry.creation = {&pm.creation().bounds(), pm.creation().snapshot()};
      }
      snap.pools.push_back(std::move(entry));
    } catch (...) {
      snap.errors.push_back("pool " + pm.name() + ": " + exception_text(std::current_exception()));
    }
  }
}

void read_caches(const CollectorState& state, Snapshot& snap) POOLSCOPE_REQUIRES(state.mu) {
  for (const CollectorState::CacheEntry& c : state.caches) {
    try {
      // Held while stats() runs: the cache's destructor waits for it.
      poolscope::detail::Lifeline::Guard alive;
      if (c.watch) {
        alive = c.watch->lock();
        if (!alive) continue;  // the cache is being destroyed
      }
      snap.caches.push_back({c.handle.name, c.handle.pool, c.handle.stats()});
    } catch (...) {
      snap.errors.push_back("cache " + c.handle.name + ": " +
                            exception_text(std::current_exception()));
    }
  }
}

}  // namespace

Snapshot take_snapshot(CollectorState& state, bool histograms) {
  Snapshot snap;
  CollectorState::Pruned gone;  // destroyed after the lock is released
  poolscope::detail::MutexLock lock(state.mu);
  gone = state.prune();
  // Call-site tables first: the pools' leak counts come from them.
  read_sites(state, snap);
  read_pools(state, histograms, snap);
  read_caches(state, snap);
  read_tiers(state, snap);
  return snap;
}

}  // namespace poolscope::exporters::detail
