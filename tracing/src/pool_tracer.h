// PoolTracer: the PoolObserver a Tracer registers with each pool. It turns
// pool events into site statistics and log lines, keeps each slot's captured
// stack for leak and churn reports, tracks which leases it reported as
// leaked, and sums up checkout timeouts.
//
// The hot path is on_checkin_fast() (checkouts are not subscribed unless
// stacks are captured), which the pool calls with no event built: one
// thread-local lookup of the site's counters, a few single-writer counter
// updates and the churn loop test, one relaxed load for leaks. It asks for
// the whole event (on_checkin()) only for a loop or while a leak is
// reported. Everything else is rare, or runs on the tracer's thread.
//
// Leak bookkeeping is per slot. `reported_[slot]` holds the checkout
// reported as leaked (0: none), and leaks_out_ how many slots hold one; a
// checkin looks at them only while leaks_out_ is not 0 (rare_at_ says so). Whoever moves a
// slot's record from its checkout to 0 logs the return, exactly once: the
// checkin when it sees its own checkout there, else the next scan when the
// lease is no longer out. While the scan logs the report, the record carries
// kPending, so a checkin in that moment leaves the return to the next scan
// and "returned" never comes before "leak".
//
// The class is thread-safe. No concurrent call to any API of this type causes
// a data race.

#pragma once

#include <atomic>
#include <chrono>
#include <map>
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
  using Clock = std::chrono::steady_clock;

  PoolTracer(std::shared_ptr<TracerState> state, Pool& pool);
  ~PoolTracer() override;

  const std::string& pool_name() const noexcept { return pool_name_; }

  // This pool's call sites.
  SiteRegistry& registry() const noexcept { return *registry_; }

  // The stack captured at checkout `checkout` of `slot`; empty when stacks
  // are off or the slot has been checked out again since.
  StackTrace stack(std::uint32_t slot, std::uint64_t checkout) const;

  // "[Called from: site <- caller <- ...]", with the callers from trace
  // (when stacks are captured).
  std::string called_from(const source_location& site, const StackTrace& trace) const;

  // The lines of a pool's life, at session_level (configuration at debug):
  // when it is attached, and its statistics (by the detection rounds).
  void log_start(const Pool& pool) const;
  void log_stats(const PoolStats& stats) const;

  // One detection round's look at the leases out (the pool's
  // active_leases()): updates the sites' leases-out gauge, reports those
  // held past threshold (if not zero) once, and logs the return of reported
  // ones that are no longer out (unless their checkin did). Never throws.
  // Builds and logs its lines without any lock a checkin takes.
  void scan_leases(std::span<const LeaseInfo> leases, std::chrono::nanoseconds threshold) noexcept;

  // Logs the summary of the timeouts since the last line, once
  // timeout_log_interval has passed since it (at once when final). Never
  // throws.
  void flush_timeouts(Clock::time_point now, bool final) noexcept;

  // Checkouts only when stacks are captured.
  unsigned events() const override;

  void on_connect(const ConnectEvent& e) override;
  void on_connect_failed(const ConnectFailedEvent& e) override;
  void on_checkout(const CheckoutEvent& e) override;
  void on_reuse(const ReuseEvent& e) override;
  bool on_checkin_fast(source_location site, std::chrono::nanoseconds held,
                       std::int64_t checkout_ns, std::uint64_t reuses) override;
  void on_checkin(const CheckinEvent& e) override;
  void on_close(const CloseEvent& e) override;
  void on_timeout(const TimeoutEvent& e) override;
  void on_notice(const NoticeEvent& e) override;
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

  void publish_stack(std::uint32_t slot, std::uint64_t checkout, const StackTrace& trace) noexcept;
  // on_checkin_fast's parts: the counting, inline, which says whether the
  // checkin is rare (a loop, a reported leak: on_checkin() then handles
  // it); and a site not in the thread's cache, a tail call, so the hot path
  // saves no registers for it.
  [[gnu::always_inline]] inline bool count_checkin(SiteCounters& c, std::int64_t held,
                                                   std::int64_t checkout_ns, std::uint64_t reuses);
  [[gnu::noinline, gnu::cold]] bool checkin_uncached(source_location site, std::int64_t held,
                                                     std::int64_t checkout_ns,
                                                     std::uint64_t reuses);
  void loop_seen(SiteCounters& c, const CheckinEvent& e, std::uint64_t run) noexcept;
  void lease_returned(const CheckinEvent& e) noexcept;
  // A slot's reported_ moved from 0 (reported) or to 0 (returned).
  void leak_recorded() noexcept;
  void leak_cleared() noexcept;
  // Logs a reported lease's return (or that its checkin came back).
  void log_returned(const source_location& site, std::chrono::nanoseconds held,
                    bool at_least) noexcept;
  std::string leak_text(const LeaseInfo& lease, std::chrono::nanoseconds threshold) const;

  // Constant after construction.
  const std::shared_ptr<TracerState> state_;
  const std::string pool_name_;
  const std::string url_;  // redacted
  const std::size_t slots_;
  const std::unique_ptr<SlotStack[]> stacks_;  // null unless capture_stacks
  const std::shared_ptr<SiteRegistry> registry_;
  const std::uint64_t registry_id_;
  const std::uint64_t churn_loop_;   // checkouts in a row that make a loop (max: off)
  const std::int64_t churn_gap_ns_;  // longest gap in a loop
  // Per slot: the checkout reported as leaked (| kPending while the report
  // is being logged), 0 for none. Written by the scan, read by checkins.
  const std::unique_ptr<std::atomic<std::uint64_t>[]> reported_;
  // Slots whose reported_ is not 0.
  std::atomic<std::uint32_t> leaks_out_{0};
  // The loop length from which a checkin takes its rare path: churn_loop_,
  // or 0 while leaks_out_ is not (so every checkin looks for its report).
  std::atomic<std::uint64_t> rare_at_;

  // State below is protected by scan_mu_ (taken by the scan only).
  poolscope::detail::Mutex scan_mu_;
  std::vector<Reported> scanned_ POOLSCOPE_GUARDED_BY(scan_mu_);  // per slot

  // State below is protected by timeout_mu_: the timeouts since the last
  // line about them. A storm starts with a timeout logged at once and ends
  // with an interval without any.
  poolscope::detail::Mutex timeout_mu_;
  bool storm_ POOLSCOPE_GUARDED_BY(timeout_mu_) = false;
  Clock::time_point since_ POOLSCOPE_GUARDED_BY(timeout_mu_);
  std::uint64_t timeouts_ POOLSCOPE_GUARDED_BY(timeout_mu_) = 0;
  std::map<std::uint32_t, std::uint64_t> timeouts_by_site_ POOLSCOPE_GUARDED_BY(timeout_mu_);
};

}  // namespace poolscope::tracing::detail
