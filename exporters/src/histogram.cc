#include "histogram.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace poolscope::exporters::detail {
namespace {

std::atomic<unsigned> g_next_stripe{0};

// Each thread keeps to one stripe.
unsigned stripe_of_this_thread() noexcept {
  thread_local const unsigned stripe = g_next_stripe.fetch_add(1, std::memory_order_relaxed);
  return stripe;
}

std::vector<std::int64_t> to_ns(const std::vector<double>& bounds) {
  std::vector<std::int64_t> out;
  for (double b : bounds) out.push_back(static_cast<std::int64_t>(std::llround(b * 1e9)));
  return out;
}

}  // namespace

std::vector<double> normalize_bounds(std::vector<double> bounds) {
  std::erase_if(bounds, [](double b) { return !std::isfinite(b) || b <= 0; });
  std::sort(bounds.begin(), bounds.end());
  bounds.erase(std::unique(bounds.begin(), bounds.end()), bounds.end());
  return bounds;
}

AtomicHistogram::AtomicHistogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), bounds_ns_(to_ns(bounds_)) {
  if (!std::is_sorted(bounds_.begin(), bounds_.end())) {
    throw std::invalid_argument("AtomicHistogram: bounds must be ascending");
  }
  for (Stripe& s : stripes_) {
    s.counts.reset(new std::atomic<std::uint64_t>[bounds_.size() + 1]);
    for (std::size_t i = 0; i <= bounds_.size(); ++i)
      s.counts[i].store(0, std::memory_order_relaxed);
  }
}

void AtomicHistogram::observe(std::chrono::nanoseconds d) noexcept {
  const std::int64_t ns = std::max<std::int64_t>(d.count(), 0);
  // Few buckets: a linear scan beats a binary search and is branch-friendly.
  std::size_t bucket = 0;
  while (bucket < bounds_ns_.size() && ns > bounds_ns_[bucket]) ++bucket;
  Stripe& s = stripes_[stripe_of_this_thread() % kStripes];
  s.counts[bucket].fetch_add(1, std::memory_order_relaxed);
  s.sum_ns.fetch_add(static_cast<std::uint64_t>(ns), std::memory_order_relaxed);
}

AtomicHistogram::Snapshot AtomicHistogram::snapshot() const {
  Snapshot snap;
  snap.cumulative.assign(bounds_.size() + 1, 0);
  std::uint64_t sum_ns = 0;
  for (const Stripe& s : stripes_) {
    for (std::size_t i = 0; i <= bounds_.size(); ++i) {
      snap.cumulative[i] += s.counts[i].load(std::memory_order_relaxed);
    }
    sum_ns += s.sum_ns.load(std::memory_order_relaxed);
  }
  for (std::size_t i = 1; i < snap.cumulative.size(); ++i)
    snap.cumulative[i] += snap.cumulative[i - 1];
  snap.count = snap.cumulative.back();
  snap.sum_seconds = static_cast<double>(sum_ns) * 1e-9;
  return snap;
}

}  // namespace poolscope::exporters::detail
