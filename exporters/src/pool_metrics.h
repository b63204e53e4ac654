// PoolMetrics: the observer a MetricsCollector registers with each pool. It
// fills the acquire, usage and creation histograms; the rest of a pool's
// metrics come from Pool::stats() at collect time.
//
// The class is thread-safe. No concurrent call to any API of this type causes
// a data race.

#pragma once

#include <memory>
#include <string>

#include "histogram.h"
#include "poolscope/pool/observer.h"
#include "poolscope/pool/pool.h"

namespace poolscope::exporters::detail {

class CollectorState;

class PoolMetrics final : public PoolObserver {
 public:
  PoolMetrics(Pool& pool, std::weak_ptr<CollectorState> owner, std::vector<double> acquire_bounds,
              std::vector<double> usage_bounds, std::vector<double> creation_bounds);

  const PoolView& view() const noexcept { return view_; }
  const std::string& name() const noexcept { return name_; }

  const AtomicHistogram& acquire() const noexcept { return acquire_; }
  const AtomicHistogram& usage() const noexcept { return usage_; }
  const AtomicHistogram& creation() const noexcept { return creation_; }

  // Only what fills the histograms, and shutdown: the pool skips this
  // observer for every other event.
  unsigned events() const override {
    return kConnectEvents | kCheckoutEvents | kCheckinEvents | kShutdownEvents;
  }

  void on_connect(const ConnectEvent& e) override { creation_.observe(e.duration); }
  void on_checkout(const CheckoutEvent& e) override { acquire_.observe(e.acquire); }
  void on_checkin(const CheckinEvent& e) override { usage_.observe(e.held); }
  void on_shutdown(const ShutdownEvent& e) override;

 private:
  const PoolView view_;
  const std::string name_;
  const std::weak_ptr<CollectorState> owner_;
  AtomicHistogram acquire_;
  AtomicHistogram usage_;
  AtomicHistogram creation_;
};

}  // namespace poolscope::exporters::detail
