// PoolMetrics: the observer a MetricsCollector registers with each pool. It
// fills the acquire, usage and creation histograms; the rest of a pool's
// metrics come from its PoolView at collect time. The collector's Subscription
// ends the registration; the pool keeps this alive while a callback may run.
//
// The class is thread-safe. No concurrent call to any API of this type causes
// a data race.

#pragma once

#include <string>
#include <vector>

#include "histogram.h"
#include "poolscope/pool/observer.h"
#include "poolscope/pool/pool.h"

namespace poolscope::exporters::detail {

class PoolMetrics final : public PoolObserver {
 public:
  PoolMetrics(const Pool& pool, std::vector<double> acquire_bounds,
              std::vector<double> usage_bounds, std::vector<double> creation_bounds);

  const PoolView& view() const noexcept { return view_; }
  const std::string& name() const noexcept { return name_; }
  double checkout_timeout_seconds() const noexcept { return checkout_timeout_s_; }

  const AtomicHistogram& acquire() const noexcept { return acquire_; }
  const AtomicHistogram& usage() const noexcept { return usage_; }
  const AtomicHistogram& creation() const noexcept { return creation_; }

  // Only what fills the histograms: the pool skips this observer for every
  // other event.
  unsigned events() const override { return kConnectEvents | kCheckoutEvents | kCheckinEvents; }

  void on_connect(const ConnectEvent& e) override { creation_.observe(e.duration); }
  // The whole acquire() as the caller saw it (wait, validation, connect),
  // as HikariCP times getConnection().
  void on_checkout(const CheckoutEvent& e) override { acquire_.observe(e.acquire); }
  // Only the hold time: the pool builds no CheckinEvent for it.
  bool on_checkin_fast(source_location, std::chrono::nanoseconds held, std::int64_t,
                       std::uint64_t) override {
    usage_.observe(held);
    return false;
  }

 private:
  const PoolView view_;
  const std::string name_;
  const double checkout_timeout_s_;
  AtomicHistogram acquire_;
  AtomicHistogram usage_;
  AtomicHistogram creation_;
};

}  // namespace poolscope::exporters::detail
