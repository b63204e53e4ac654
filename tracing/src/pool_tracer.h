// PoolTracer: the PoolObserver a Tracer registers with each pool. It turns
// pool events into site statistics and log lines, keeps each slot's captured
// stack for leak reports, and tracks which leases it reported as leaked.
//
// Leak bookkeeping is per slot, so a checkin looks at its own slot only: one
// relaxed load, no lock, whatever other leases are leaked. `reported_[slot]`
// holds the checkout reported as leaked (0: none). Whoever moves it from that
// checkout to 0 logs the return, exactly once: the checkin when it sees its
// own checkout there, else the next scan when the lease is no longer out.
// While the scan logs the report, the value carries kPending, so a checkin in
// that moment leaves the return to the next scan and "returned" never comes
// before "leak".
//
// The class is thread-safe. No concurrent call to any API of this type causes
// a data race.

#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "poolscope/base/mutex.h"
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

  // The stack captured at checkout `checkout` of `slot`; empty when stacks
  // are off or the slot has been checked out again since.
  StackTrace stack(std::uint32_t slot, std::uint64_t checkout) const;

  // One round of leak detection over leases, the pool's active_leases():
  // reports those held past threshold once, and logs the return of reported
  // ones that are no longer out (unless their checkin did). Never throws.
  // Builds and logs its lines without any lock a checkin takes.
  void scan_leaks(std::span<const LeaseInfo> leases, std::chrono::nanoseconds threshold) noexcept;

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
  // What the scan remembers of a lease it reported, per slot.
  struct Reported {
    std::uint64_t checkout = 0;  // 0: none
    poolscope::source_location site;
    std::chrono::nanoseconds held{0};  // when last seen out
  };
  static constexpr std::uint64_t kPending = 1ull << 63;

  // "[Called from: site <- caller <- ...]" for a connect at site, with the
  // callers from trace (when stacks are captured).
  std::string called_from(const source_location& site, const StackTrace& trace) const;
  void publish_stack(std::uint32_t slot, std::uint64_t checkout, const StackTrace& trace) noexcept;
  [[gnu::noinline, gnu::cold]] void lease_returned(const CheckinEvent& e) noexcept;
  std::string leak_text(const LeaseInfo& lease, std::chrono::nanoseconds threshold) const;

  // Constant after construction.
  const std::shared_ptr<TracerState> state_;
  const std::string pool_name_;
  const std::string url_;  // redacted
  const std::size_t slots_;
  const std::unique_ptr<SlotStack[]> stacks_;  // null unless capture_stacks
  const std::shared_ptr<SiteRegistry> registry_;
  // Per slot: the checkout reported as leaked (| kPending while the report
  // is being logged), 0 for none. Written by the scan, read by checkins.
  const std::unique_ptr<std::atomic<std::uint64_t>[]> reported_;

  // State below is protected by scan_mu_ (taken by the scan only).
  poolscope::detail::Mutex scan_mu_;
  std::vector<Reported> scanned_ POOLSCOPE_GUARDED_BY(scan_mu_);  // per slot
};

}  // namespace poolscope::tracing::detail
