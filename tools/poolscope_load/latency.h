// LatencyHistogram: a log-linear histogram of durations for percentiles,
// 16 sub-buckets per power of two (about 6% resolution), plus the exact
// maximum; fixed size, no allocation when recording.
//
// Not thread-safe: one per thread, merged at the end (across processes
// through buckets() and add_bucket()).

#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <cstdint>
#include <utility>
#include <vector>

namespace poolscope::load {

class LatencyHistogram {
 public:
  void record(std::chrono::nanoseconds d) noexcept {
    const std::uint64_t ns = d.count() > 0 ? static_cast<std::uint64_t>(d.count()) : 0;
    ++counts_[bucket(ns)];
    ++total_;
    max_ns_ = std::max(max_ns_, ns);
  }

  void merge(const LatencyHistogram& other) noexcept {
    for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
    total_ += other.total_;
    max_ns_ = std::max(max_ns_, other.max_ns_);
  }

  std::uint64_t count() const noexcept { return total_; }
  double max_seconds() const noexcept { return static_cast<double>(max_ns_) * 1e-9; }

  // The q-quantile (0..1) in seconds: the midpoint of its bucket, never above
  // the maximum. 0 if empty.
  double quantile_seconds(double q) const noexcept {
    if (total_ == 0) return 0;
    const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_ - 1)) + 1;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min((lower(i) + lower(i + 1)) / 2.0 * 1e-9, max_seconds());
    }
    return max_seconds();
  }

  // The non-empty buckets as (index, count), and the maximum: what another
  // process needs to merge this one (add_bucket, set_max_at_least).
  std::vector<std::pair<std::size_t, std::uint64_t>> buckets() const {
    std::vector<std::pair<std::size_t, std::uint64_t>> out;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      if (counts_[i] != 0) out.emplace_back(i, counts_[i]);
    }
    return out;
  }
  std::uint64_t max_ns() const noexcept { return max_ns_; }
  // Ignores an index out of range (a document from another build).
  void add_bucket(std::size_t index, std::uint64_t count) noexcept {
    if (index >= kBuckets) return;
    counts_[index] += count;
    total_ += count;
  }
  void set_max_at_least(std::uint64_t ns) noexcept { max_ns_ = std::max(max_ns_, ns); }

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
  std::uint64_t max_ns_ = 0;
};

}  // namespace poolscope::load
