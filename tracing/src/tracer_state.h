// TracerState: what a Tracer and its per-pool observers share. The observers
// live as long as the pools keep them, so they hold this by shared_ptr and a
// Tracer can go away before its pools do.
//
// The class is thread-safe. No concurrent call to any API of this type causes
// a data race.

#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "poolscope/base/duration_text.h"
#include "poolscope/base/mutex.h"
#include "poolscope/pool/pool.h"
#include "poolscope/tracing/stack_trace.h"
#include "poolscope/tracing/tracer.h"
#include "site_registry.h"

namespace poolscope::tracing::detail {

class PoolTracer;

// The name the kernel has for an OS thread of this process ("" if gone).
std::string thread_name(std::uint64_t tid);

class TracerState {
 public:
  explicit TracerState(TracerConfig config);

  const TracerConfig& config() const noexcept { return config_; }
  spdlog::logger& logger() const noexcept { return *logger_; }

  std::atomic<double> churn_threshold;

  // Detector counts, for Tracer::stats().
  std::atomic<std::uint64_t> churn_warnings{0};
  std::atomic<std::uint64_t> leaks_reported{0};
  std::atomic<std::uint64_t> leaks_returned{0};

  // Set when the Tracer's destructor starts: TracerView reads fail from then on.
  std::atomic<bool> closed{false};

  void attach(Pool& pool, std::shared_ptr<TracerState> self);
  void detach(Pool& pool);
  void detach_all();
  // From a pool's on_shutdown: forget the pool.
  void pool_closed(const PoolTracer* tracer);

  // One round of leak detection over every attached pool. The pools'
  // leases are read under mu_; lines are built and logged outside it.
  void scan_leaks();

  // The pools attached now.
  std::vector<std::shared_ptr<PoolTracer>> pools() const;

  // Each attached pool's site table, unsorted: the registry's counts (of
  // checkouts that came back) plus the checkouts still out.
  std::vector<PoolSites> pool_sites();

 private:
  struct Attached {
    const Pool* pool;  // identifies the pool; never dereferenced
    PoolView view;     // reads the pool while it lives
    std::shared_ptr<PoolTracer> tracer;
    Subscription subscription;  // of tracer to the pool
  };

  // Constant after construction.
  const TracerConfig config_;
  const std::shared_ptr<spdlog::logger> logger_;

  // State below is protected by mu_.
  mutable Mutex mu_;
  std::vector<Attached> pools_ POOLSCOPE_GUARDED_BY(mu_);
};

}  // namespace poolscope::tracing::detail
