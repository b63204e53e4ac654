// PoolTracer: the PoolObserver a Tracer registers with each pool. It turns
// pool events into site statistics and log lines, and keeps each slot's
// captured stack for leak reports.
//
// The class is thread-safe. No concurrent call to any API of this type causes
// a data race.

#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "poolscope/pool/observer.h"
#include "poolscope/pool/pool.h"
#include "poolscope/tracing/stack_trace.h"
#include "site_registry.h"

namespace poolscope::tracing::detail {

class TracerState;

class PoolTracer final : public PoolObserver {
 public:
  PoolTracer(std::shared_ptr<TracerState> state, Pool& pool);
  ~PoolTracer() override;

  const std::string& pool_name() const noexcept { return pool_name_; }

  // This pool's call sites.
  SiteRegistry& registry() const noexcept { return *registry_; }

  // Leases of this pool reported as leaked so far.
  std::uint64_t leaks_reported() const noexcept { return leaks_.load(std::memory_order_relaxed); }
  void count_leak() noexcept { leaks_.fetch_add(1, std::memory_order_relaxed); }

  // The stack captured at checkout `checkout` of `slot`; empty when stacks
  // are off or the slot has been checked out again since.
  StackTrace stack(std::uint32_t slot, std::uint64_t checkout) const;

  // Everything but checkouts, which only stack capture needs: a site's
  // acquires are counted when its lease comes back (see TracerState::pool_sites).
  unsigned events() const override;

  void on_connect(const ConnectEvent& e) override;
  void on_connect_failed(const ConnectFailedEvent& e) override;
  void on_checkout(const CheckoutEvent& e) override;
  void on_reuse(const ReuseEvent& e) override;
  void on_checkin(const CheckinEvent& e) override;
  void on_close(const CloseEvent& e) override;
  void on_timeout(const TimeoutEvent& e) override;
  void on_shutdown(const ShutdownEvent& e) override;

 private:
  struct SlotStack;

  // "[Called from: site <- caller <- ...]" for a connect at site.
  std::string called_from(const std::source_location* site) const;

  // Constant after construction.
  const std::shared_ptr<TracerState> state_;
  const std::string pool_name_;
  const std::string url_;  // redacted
  const std::size_t slots_;
  const std::unique_ptr<SlotStack[]> stacks_;  // null unless capture_stacks
  const std::shared_ptr<SiteRegistry> registry_;

  std::atomic<std::uint64_t> leaks_{0};
};

}  // namespace poolscope::tracing::detail
