// The pool's invariants, checked while a run's workers use it and once they
// have stopped: open <= size + overflow, active <= size + overflow, no more
// waiters than threads that acquire, and at the end every lease back and
// every connection opened either open or closed.
//
// An InvariantSampler samples on its own thread from construction to stop();
// the accessors may be called from any thread.

#pragma once

#include <atomic>
#include <cstddef>
#include <string>
#include <thread>
#include <vector>

#include "poolscope/base/mutex.h"
#include "poolscope/pool/pool.h"

namespace poolscope::load {

// The class is thread-safe. No concurrent call to any API of this type
// causes a data race.
class InvariantSampler {
 public:
  // Samples pool every 2 ms until stop(); acquirers is how many threads may
  // wait in acquire() at once. Disabled: samples nothing, reports nothing.
  InvariantSampler(const Pool& pool, std::size_t acquirers, bool enabled);
  ~InvariantSampler();
  InvariantSampler(const InvariantSampler&) = delete;
  InvariantSampler& operator=(const InvariantSampler&) = delete;

  // Stops sampling (idempotent), then checks what must hold once every
  // thread that acquired has stopped.
  void stop_and_check_final();

  bool enabled() const noexcept { return enabled_; }
  std::size_t max_open() const noexcept { return max_open_.load(std::memory_order_relaxed); }
  std::size_t max_pending() const noexcept { return max_pending_.load(std::memory_order_relaxed); }
  // At most 20, in the order seen.
  std::vector<std::string> violations() const;

 private:
  void sample();
  void violation(std::string text);

  const Pool& pool_;
  const std::size_t acquirers_;
  const bool enabled_;
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> max_open_{0};
  std::atomic<std::size_t> max_pending_{0};
  mutable detail::Mutex mu_;
  std::vector<std::string> violations_ POOLSCOPE_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace poolscope::load
