// AtomicHistogram: a fixed-bucket histogram filled with relaxed atomics,
// spread over stripes by thread so that threads on different cores rarely
// write the same cache line. observe() never locks or allocates.
//
// The class is thread-safe. No concurrent call to any API of this type causes
// a data race. A snapshot taken during observes may lag them by a few counts.

#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

namespace poolscope::exporters::detail {

class AtomicHistogram {
 public:
  // bounds: upper bounds in seconds, ascending, finite. +Inf is implied.
  explicit AtomicHistogram(std::vector<double> bounds);

  void observe(std::chrono::nanoseconds d) noexcept;

  struct Snapshot {
    std::vector<std::uint64_t> cumulative;  // one per bound, then +Inf
    std::uint64_t count = 0;
    double sum_seconds = 0;
  };
  Snapshot snapshot() const;

  const std::vector<double>& bounds() const noexcept { return bounds_; }

 private:
  static constexpr std::size_t kStripes = 8;
  struct alignas(64) Stripe {
    std::unique_ptr<std::atomic<std::uint64_t>[]> counts;  // bounds + 1
    std::atomic<std::uint64_t> sum_ns{0};
  };

  const std::vector<double> bounds_;
  const std::vector<std::int64_t> bounds_ns_;
  std::array<Stripe, kStripes> stripes_;
};

// Sorted, deduplicated, finite, positive bounds.
std::vector<double> normalize_bounds(std::vector<double> bounds);

}  // namespace poolscope::exporters::detail
