#include "tracer_state.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <fstream>
#include <mutex>
#include <stdexcept>

#include "pool_tracer.h"
#include "poolscope/pool/site.h"

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
  MutexLock lock(mu_);  // keeps each pool alive while its leases are read
  std::vector<PoolSites> out;
  for (const Attached& a : pools_) {
    SiteRegistry& registry = a.tracer->registry();
    std::map<std::uint32_t, std::uint64_t> out_now;  // site index -> checkouts not back yet
    for (const LeaseInfo& lease : a.pool->active_leases()) ++out_now[registry.lookup(lease.site).index];
    PoolSites table{a.tracer->pool_name(), registry.snapshot(), registry.folded(), a.tracer->leaks_reported()};
    for (const auto& [index, n] : out_now) {
      // The snapshot lists named sites by index, then "other".
      SiteStats& s = index < table.sites.size() - 1 ? table.sites[index] : table.sites.back();
      s.acquires += n;
    }
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
  pool.add_observer(tracer);
  pools_.push_back({&pool, std::move(tracer)});
}

void TracerState::detach(Pool& pool) {
  MutexLock lock(mu_);
  for (auto it = pools_.begin(); it != pools_.end(); ++it) {
    if (it->pool == &pool) {
      pool.remove_observer(it->tracer.get());
      std::erase_if(leaks_, [&](const auto& leak) { return std::get<0>(leak.first) == it->tracer.get(); });
      open_leaks_.store(static_cast<int>(leaks_.size()), std::memory_order_relaxed);
      pools_.erase(it);
      return;
    }
  }
}

void TracerState::detach_all() {
  MutexLock lock(mu_);
  for (Attached& a : pools_) a.pool->remove_observer(a.tracer.get());
  pools_.clear();
  leaks_.clear();
  open_leaks_.store(0, std::memory_order_relaxed);
}

void TracerState::pool_closed(const PoolTracer* tracer) {
  MutexLock lock(mu_);
  std::erase_if(pools_, [tracer](const Attached& a) { return a.tracer.get() == tracer; });
  std::erase_if(leaks_, [tracer](const auto& leak) { return std::get<0>(leak.first) == tracer; });
  open_leaks_.store(static_cast<int>(leaks_.size()), std::memory_order_relaxed);
}

void TracerState::scan_leaks() {
  const std::chrono::nanoseconds threshold = config_.leak_threshold;
  if (threshold.count() == 0) return;
  MutexLock lock(mu_);
  for (const Attached& a : pools_) {
    for (const LeaseInfo& lease : a.pool->active_leases()) {  // longest held first
      if (lease.held < threshold) break;
      const LeakKey key{a.tracer.get(), lease.slot, lease.checkout};
      if (leaks_.contains(key)) continue;
      std::string site = format_site(lease.site);
      a.tracer->registry().add_leak(a.tracer->registry().lookup(lease.site).index);
      a.tracer->count_leak();
      std::string text = "Possible session leak: connection " + std::to_string(lease.connection_id) +
                         " (pool=" + a.tracer->pool_name() + ") held for " +
                         duration_text(lease.held) + " by " + site + " on thread " +
                         std::to_string(lease.thread);
      if (std::string name = thread_name(lease.thread); !name.empty()) text += " (" + name + ")";
      text += ", past leak_threshold " + duration_text(threshold);
      const StackTrace stack = a.tracer->stack(lease.slot, lease.checkout);
      for (const std::string& caller : stack.callers_of(lease.site, config_.stack_depth)) {
        text += "\n    called from " + caller;
      }
      logger_->warn("{}", text);
      leaks_reported.fetch_add(1, std::memory_order_relaxed);
      leaks_.emplace(key, std::move(site));
      open_leaks_.store(static_cast<int>(leaks_.size()), std::memory_order_relaxed);
    }
  }
}

void TracerState::lease_returned_slow(const PoolTracer* tracer, std::uint32_t slot,
                                      std::uint64_t checkout, std::chrono::nanoseconds held) {
  MutexLock lock(mu_);
  const auto it = leaks_.find(LeakKey{tracer, slot, checkout});
  if (it == leaks_.end()) return;
  logger_->info("Previously reported leaked lease was returned: pool={}, site {}, held for {}",
                tracer->pool_name(), it->second, duration_text(held));
  leaks_.erase(it);
  leaks_returned.fetch_add(1, std::memory_order_relaxed);
  open_leaks_.store(static_cast<int>(leaks_.size()), std::memory_order_relaxed);
}

}  // namespace poolscope::tracing::detail
