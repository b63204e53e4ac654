// LatencyHistogram: a log-linear histogram of durations for percentiles,
// 16 sub-buckets per power of two (about 6% resolution), fixed size, no
// allocation when recording.
//
// Not thread-safe: one per thread, merged at the end.

#pragma once

#include <array>
#include <bit>
#include <chrono>
#include <cstdint>

namespace poolscope::load {

class LatencyHistogram {
 public:
  void record(std::chrono::nanoseconds d) noexcept {
    const std::uint64_t ns = d.count() > 0 ? static_cast<std::uint64_t>(d.count()) : 0;
    ++counts_[bucket(ns)];
    ++total_;
  }

  void merge(const LatencyHistogram& other) noexcept {
    for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
    total_ += other.total_;
  }

  std::uint64_t count() const noexcept { return total_; }

  // The q-quantile (0..1) in seconds: the midpoint of its bucket. 0 if empty.
  double quantile_seconds(double q) const noexcept {
    if (total_ == 0) return 0;
    const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_ - 1)) + 1;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return (lower(i) + lower(i + 1)) / 2.0 * 1e-9;
    }
    return lower(kBuckets) * 1e-9;
  }

 private:
  static constexpr int kSubBits = 4;
  static constexpr std::size_t kBuckets = (64 - kSubBits + 1) << kSubBits;

  // Values below 16 ns get one bucket each; above, 16 per power of two.
  static std::size_t bucket(std::uint64_t ns) noexcept {
    if (ns < (1u << kSubBits)) return static_cast<std::size_t>(ns);
    const int exponent = std::bit_width(ns) - 1;  // >= kSubBits
    const std::uint64_t sub = (ns >> (exponent - kSubBits)) & ((1u << kSubBits) - 1);
    return static_cast<std::size_t>(((exponent - kSubBits + 1) << kSubBits) + sub);
  }

  static double lower(std::size_t index) noexcept {
    if (index < (1u << kSubBits)) return static_cast<double>(index);
    const int exponent = static_cast<int>(index >> kSubBits) + kSubBits - 1;
    const std::uint64_t sub = index & ((1u << kSubBits) - 1);
    return static_cast<double>(((1ull << kSubBits) + sub) << (exponent - kSubBits));
  }

  std::array<std::uint64_t, kBuckets> counts_{};
  std::uint64_t total_ = 0;
};

}  // namespace poolscope::load
