// CacheClock: where a cache gets the time for TTLs. The default reads the
// kernel's coarse monotonic clock (a few nanoseconds, millisecond-ish
// resolution, plenty for TTLs); ManualClock is for tests that step time.
//
// Both classes are thread-safe.

#pragma once

#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>

namespace poolscope::cache {

class CacheClock {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  virtual ~CacheClock() = default;
  virtual time_point now() const noexcept = 0;
};

// CLOCK_MONOTONIC_COARSE: the same epoch as std::chrono::steady_clock.
// Inline, so that a cache on the default clock reads it without a call of
// its own (a cache hit reads the time).
inline CacheClock::time_point coarse_now() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return CacheClock::time_point(std::chrono::seconds(ts.tv_sec) +
                                std::chrono::nanoseconds(ts.tv_nsec));
}

class CoarseClock final : public CacheClock {
 public:
  time_point now() const noexcept override { return coarse_now(); }
};

// A clock that moves only when told to.
class ManualClock final : public CacheClock {
 public:
  time_point now() const noexcept override {
    return time_point(std::chrono::nanoseconds(ns_.load(std::memory_order_acquire)));
  }
  void advance(std::chrono::nanoseconds d) noexcept {
    ns_.fetch_add(d.count(), std::memory_order_acq_rel);
  }

 private:
  std::atomic<std::int64_t> ns_{1'000'000'000};
};

// The clock caches use unless configured otherwise (one shared CoarseClock).
std::shared_ptr<CacheClock> default_clock();

}  // namespace poolscope::cache
