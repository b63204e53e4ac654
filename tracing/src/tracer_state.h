// TracerState: what a Tracer, its per-pool observers and its detection
// thread share. The observers live as long as the pools keep them, so they
// hold this by shared_ptr and a Tracer can go away before its pools do.
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
#include "poolscope/tracing/tracer.h"

namespace poolscope::tracing::detail {

class PoolTracer;
using poolscope::detail::Mutex;
using poolscope::detail::MutexLock;

// The name the kernel has for an OS thread of this process ("" if gone).
std::string thread_name(std::uint64_t tid);

class TracerState {
 public:
  explicit TracerState(TracerConfig config);

  const TracerConfig& config() const noexcept { return config_; }
  spdlog::logger& logger() const noexcept { return *logger_; }
  const std::shared_ptr<spdlog::logger>& logger_ptr() const noexcept { return logger_; }

  std::atomic<double> churn_threshold;

  // What the detectors reported, for Tracer::stats().
  std::atomic<std::uint64_t> churn_warnings{0};
  std::atomic<std::uint64_t> leaks_reported{0};
  std::atomic<std::uint64_t> leaks_returned{0};
  std::atomic<std::uint64_t> timeout_lines{0};

  // Set when the Tracer's destructor starts: TracerView reads fail from then on.
  std::atomic<bool> closed{false};

  void attach(Pool& pool, std::shared_ptr<TracerState> self);
  void detach(Pool& pool);
  void detach_all();
  // From a pool's on_shutdown: forget the pool.
  void pool_closed(const PoolTracer* tracer);

  // An attached pool: its observer, and a view that reads the pool while
  // it lives.
  struct Attached {
    std::shared_ptr<PoolTracer> tracer;
    PoolView view;
  };
  // The pools attached now.
  std::vector<Attached> pools() const;

 private:
  struct Entry {
    const Pool* pool;  // identifies the pool; never dereferenced
    Attached attached;
    Subscription subscription;  // of the tracer to the pool
  };

  // Constant after construction.
  const TracerConfig config_;
  const std::shared_ptr<spdlog::logger> logger_;

  // State below is protected by mu_.
  mutable Mutex mu_;
  std::vector<Entry> pools_ POOLSCOPE_GUARDED_BY(mu_);
};

}  // namespace poolscope::tracing::detail
