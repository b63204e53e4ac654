// The PoolTracer's look at the leases out, once per detection round: the
// leases-out gauge and leak detection (see pool_tracer.h for the protocol
// between the scan and the checkins).

#include <spdlog/spdlog.h>

#include <algorithm>
#include <unordered_map>
#include <utility>

#include "pool_tracer.h"
#include "poolscope/base/log_text.h"
#include "poolscope/base/site.h"
#include "tracer_state.h"

namespace poolscope::tracing::detail {

void PoolTracer::lease_returned(const CheckinEvent& e) noexcept {
  if (e.slot >= slots_ || reported_[e.slot].load(std::memory_order_relaxed) != e.checkout) return;
  std::uint64_t expected = e.checkout;
  if (!reported_[e.slot].compare_exchange_strong(expected, 0, std::memory_order_acq_rel,
                                                 std::memory_order_relaxed)) {
    return;  // the scan logged it
  }
  leak_cleared();
  log_returned(e.site, e.held, /*at_least=*/false);
}

void PoolTracer::leak_recorded() noexcept {
  leaks_out_.fetch_add(1, std::memory_order_relaxed);
  rare_at_.store(0, std::memory_order_relaxed);
}

void PoolTracer::leak_cleared() noexcept {
  // Racing with leak_recorded() this may leave rare_at_ high while a leak is
  // out: its return is then logged by the next scan, which sets it right.
  if (leaks_out_.fetch_sub(1, std::memory_order_relaxed) == 1) {
    rare_at_.store(churn_loop_, std::memory_order_relaxed);
  }
}

void PoolTracer::log_returned(const source_location& site, std::chrono::nanoseconds held,
                              bool at_least) noexcept {
  state_->leaks_returned.fetch_add(1, std::memory_order_relaxed);
  try {
    state_->logger().info(
        "Previously reported leaked lease was returned: pool={}, site {}, held "
        "for {}{}",
        log_text(pool_name_), format_site(site), at_least ? "more than " : "", duration_text(held));
  } catch (...) {
    // A log line that cannot be written is dropped, nothing else.
  }
}

std::string PoolTracer::leak_text(const LeaseInfo& lease,
                                  std::chrono::nanoseconds threshold) const {
  std::string text = "Possible session leak: connection " + std::to_string(lease.connection_id) +
                     " (pool=" + log_text(pool_name_) + ") held for " + duration_text(lease.held) +
                     " by " + format_site(lease.site) + " on thread " +
                     std::to_string(lease.thread);
  if (std::string name = thread_name(lease.thread); !name.empty()) {
    text += " (" + log_text(name) + ")";
  }
  text += ", past leak_threshold " + duration_text(threshold);
  const StackTrace stack = this->stack(lease.slot, lease.checkout);
  if (!stack.empty()) text += " " + called_from(lease.site, stack);
  return text;
}

void PoolTracer::scan_leases(std::span<const LeaseInfo> leases,
                             std::chrono::nanoseconds threshold) noexcept {
  try {
    std::unordered_map<std::uint32_t, std::uint64_t> active;
    for (const LeaseInfo& lease : leases) ++active[registry().index_of(lease.site)];
    registry().set_active(active);
  } catch (...) {
    // Out of memory: the gauge keeps its last values.
  }
  if (threshold.count() == 0) return;
  poolscope::detail::MutexLock lock(scan_mu_);
  spdlog::logger& log = state_->logger();

  // Reported leases no longer out: log the return their checkin did not.
  for (std::size_t slot = 0; slot < slots_; ++slot) {
    Reported& r = scanned_[slot];
    if (r.checkout == 0) continue;
    const auto out = std::find_if(leases.begin(), leases.end(), [&](const LeaseInfo& l) {
      return l.slot == slot && l.checkout == r.checkout;
    });
    if (out != leases.end()) {
      r.held = out->held;
      continue;
    }
    const Reported back = std::exchange(r, Reported{});
    std::uint64_t expected = back.checkout;
    if (!reported_[slot].compare_exchange_strong(expected, 0, std::memory_order_acq_rel,
                                                 std::memory_order_relaxed)) {
      continue;  // its checkin logged it
    }
    leak_cleared();
    log_returned(back.site, back.held, /*at_least=*/true);
  }

  // Leases past the threshold not reported yet.
  for (const LeaseInfo& lease : leases) {  // longest held first
    if (lease.held < threshold) break;
    if (lease.slot >= slots_ || scanned_[lease.slot].checkout == lease.checkout) continue;
    std::string text;
    std::uint32_t site = 0;
    try {
      text = leak_text(lease, threshold);
      site = registry().index_of(lease.site);
    } catch (...) {
      continue;  // nothing recorded: the next scan tries again
    }
    // Recorded and counted before the line is written, so a reader who sees
    // the line sees the counts; a checkin meanwhile sees kPending and leaves
    // the return to the next scan.
    if (scanned_[lease.slot].checkout == 0) leak_recorded();
    reported_[lease.slot].store(lease.checkout | kPending, std::memory_order_relaxed);
    scanned_[lease.slot] = Reported{lease.checkout, lease.site, lease.held};
    registry().add_leak(site);
    state_->leaks_reported.fetch_add(1, std::memory_order_relaxed);
    try {
      log.warn("{}", text);
    } catch (...) {
    }
    reported_[lease.slot].store(lease.checkout, std::memory_order_release);
  }
  rare_at_.store(leaks_out_.load(std::memory_order_relaxed) != 0 ? 0 : churn_loop_,
                 std::memory_order_relaxed);
}

}  // namespace poolscope::tracing::detail
