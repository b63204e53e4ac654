#include "tracer_state.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <map>
#include <mutex>
#include <stdexcept>

#include "pool_tracer.h"
#include "poolscope/base/site.h"

namespace poolscope::tracing::detail {
namespace {

std::shared_ptr<spdlog::logger> default_logger() {
  static std::mutex mu;
  std::lock_guard lock(mu);
  if (auto logger = spdlog::get("poolscope")) return logger;
  return spdlog::stderr_color_mt("poolscope");
}

}  // namespace

std::string thread_name(std::uint64_t tid) {
  std::ifstream comm("/proc/self/task/" + std::to_string(tid) + "/comm");
  std::string name;
  std::getline(comm, name);
  return name;
}

TracerState::TracerState(TracerConfig config)
    : churn_threshold(config.churn_threshold),
      config_(std::move(config)),
      logger_(config_.logger != nullptr ? config_.logger : default_logger()) {}

std::vector<std::shared_ptr<PoolTracer>> TracerState::pools() const {
  MutexLock lock(mu_);
  std::vector<std::shared_ptr<PoolTracer>> out;
  for (const Attached& a : pools_) out.push_back(a.tracer);
  return out;
}

std::vector<PoolSites> TracerState::pool_sites() {
  MutexLock lock(mu_);
  std::vector<PoolSites> out;
  out.reserve(pools_.size());
  for (const Attached& a : pools_) {
    SiteRegistry& registry = a.tracer->registry();
    // The registry first, then the leases out: a lease that comes back in
    // between is missed for this once rather than counted twice.
    PoolSites table{a.tracer->pool_name(), registry.snapshot(), registry.folded(), 0};
    // The snapshot lists named sites by index, then "other"; a site first
    // seen after it goes before "other".
    const std::size_t named = table.sites.size() - 1;
    SiteStats other = std::move(table.sites.back());
    table.sites.pop_back();
    std::map<std::uint32_t, std::size_t> later;  // site index -> position
    for (const LeaseInfo& lease : a.view.active_leases().value_or(std::vector<LeaseInfo>{})) {
      const std::uint32_t index = registry.index_of(lease.site);
      if (index == registry.max_sites()) {
        ++other.acquires;
      } else if (index < named) {
        ++table.sites[index].acquires;
      } else {
        const auto [it, fresh] = later.emplace(index, table.sites.size());
        if (fresh) table.sites.push_back(registry.describe(index));
        ++table.sites[it->second].acquires;
      }
    }
    table.sites.push_back(std::move(other));
    for (const SiteStats& s : table.sites) table.leaks_reported += s.leaks;
    out.push_back(std::move(table));
  }
  return out;
}

void TracerState::attach(Pool& pool, std::shared_ptr<TracerState> self) {
  MutexLock lock(mu_);
  for (const Attached& a : pools_) {
    if (a.pool == &pool) {
      throw std::invalid_argument("Tracer::attach: pool '" + pool.name() + "' is already attached");
    }
  }
  auto tracer = std::make_shared<PoolTracer>(std::move(self), pool);
  Subscription subscription = pool.add_observer(tracer);
  pools_.push_back({&pool, pool.view(), std::move(tracer), std::move(subscription)});
}

void TracerState::detach(Pool& pool) {
  MutexLock lock(mu_);
  for (auto it = pools_.begin(); it != pools_.end(); ++it) {
    if (it->pool == &pool) {
      pools_.erase(it);  // ends the subscription
      return;
    }
  }
}

void TracerState::detach_all() {
  std::vector<Attached> gone;
  MutexLock lock(mu_);
  gone.swap(pools_);
}

void TracerState::pool_closed(const PoolTracer* tracer) {
  std::vector<Attached> gone;  // destroyed outside mu_
  MutexLock lock(mu_);
  for (auto it = pools_.begin(); it != pools_.end();) {
    if (it->tracer.get() == tracer) {
      gone.push_back(std::move(*it));
      it = pools_.erase(it);
    } else {
      ++it;
    }
  }
}

void TracerState::scan_leaks() {
  const std::chrono::nanoseconds threshold = config_.leak_threshold;
  if (threshold.count() == 0) return;
  std::vector<std::pair<std::shared_ptr<PoolTracer>, std::vector<LeaseInfo>>> rounds;
  {
    MutexLock lock(mu_);
    rounds.reserve(pools_.size());
    for (const Attached& a : pools_) {
      if (auto leases = a.view.active_leases()) rounds.emplace_back(a.tracer, std::move(*leases));
    }
  }
  for (const auto& [tracer, leases] : rounds) tracer->scan_leaks(leases, threshold);
}

}  // namespace poolscope::tracing::detail
