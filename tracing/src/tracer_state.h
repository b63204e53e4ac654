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
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "poolscope/pool/mutex.h"
#include "poolscope/pool/duration_text.h"
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

  void attach(Pool& pool, std::shared_ptr<TracerState> self);
  void detach(Pool& pool);
  void detach_all();
  // From a pool's on_shutdown: forget the pool and its unreturned leaks.
  void pool_closed(const PoolTracer* tracer);

  // One round of leak detection over every attached pool.
  void scan_leaks();

  // The pools attached now.
  std::vector<std::shared_ptr<PoolTracer>> pools() const;

  // Each attached pool's site table, unsorted: the registry's counts (of
  // checkouts that came back) plus the checkouts still out.
  std::vector<PoolSites> pool_sites();

  // From on_checkin: logs the return of a lease reported as leaked.
  // Cheap when nothing is reported: one relaxed load.
  void lease_returned(const PoolTracer* tracer, std::uint32_t slot, std::uint64_t checkout,
                      std::chrono::nanoseconds held) {
    if (open_leaks_.load(std::memory_order_relaxed) != 0) [[unlikely]] {
      lease_returned_slow(tracer, slot, checkout, held);
    }
  }

 private:
  using LeakKey = std::tuple<const PoolTracer*, std::uint32_t, std::uint64_t>;
  struct Attached {
    Pool* pool;
    std::shared_ptr<PoolTracer> tracer;
  };

  void lease_returned_slow(const PoolTracer* tracer, std::uint32_t slot, std::uint64_t checkout,
                           std::chrono::nanoseconds held);

  // Constant after construction.
  const TracerConfig config_;
  const std::shared_ptr<spdlog::logger> logger_;

  std::atomic<int> open_leaks_{0};  // size of leaks_

  // State below is protected by mu_.
  mutable Mutex mu_;
  std::vector<Attached> pools_ POOLSCOPE_GUARDED_BY(mu_);
  std::map<LeakKey, std::string> leaks_ POOLSCOPE_GUARDED_BY(mu_);  // -> site name
};

}  // namespace poolscope::tracing::detail
