// PoolCore's work off the checkout path: the housekeeper (expired and idle
// connections, min_idle), statistics and lease snapshots, the timeout
// message, observer registration, and shutdown.

#include <algorithm>
#include <iomanip>
#include <map>
#include <sstream>
#include <utility>

#include "clock.h"
#include "pool_core.h"
#include "poolscope/base/site.h"

namespace poolscope::detail {

using std::chrono::nanoseconds;

PoolCore::~PoolCore() = default;

// Runs on the housekeeper thread only, which shutdown() stops and joins
// before it closes the pool: the pool is never closed (nor the core
// orphaned) while this runs, so giving slots back cannot delete the core.
void PoolCore::housekeep(std::stop_token stop) noexcept {
  const std::int64_t now = now_ns();
  std::size_t idle = 0;
  for (std::size_t i = 0; i < max_; ++i) {
    if (slots_[i].state.load(kRelaxed) == SlotState::kIdle) ++idle;
  }
  for (std::size_t i = 0; i < max_ && !stop.stop_requested(); ++i) {
    Slot* slot = &slots_[i];
    if (slot->state.load(std::memory_order_acquire) != SlotState::kIdle) continue;
    std::optional<CloseReason> reason;
    const std::size_t open = open_count_.load(kRelaxed);
    if (now >= slot->expires_ns.load(kRelaxed)) {
      reason = CloseReason::kMaxLifetime;
    } else if (idle_timeout_ns_ > 0 && open > config_.min_idle &&
               now - slot->last_used_ns.load(kRelaxed) > idle_timeout_ns_) {
      reason = CloseReason::kIdleTimeout;
    } else if (open > config_.pool_size && idle > config_.pool_size) {
      reason = CloseReason::kOverflow;  // idle overflow left by a racing return
    }
    if (!reason) continue;
    SlotState expected = SlotState::kIdle;
    if (!slot->state.compare_exchange_strong(expected, SlotState::kClosing,
                                             std::memory_order_acquire, kRelaxed)) {
      continue;
    }
    --idle;
    discard(slot, *reason);
  }
  // Keep min_idle connections open.
  while (!stop.stop_requested() && open_count_.load(kRelaxed) < config_.min_idle) {
    try {
      if (!open_idle()) break;
    } catch (...) {
      break;  // reported to observers; retried next round
    }
  }
}

void PoolCore::housekeeper_loop(std::stop_token stop) noexcept {
  auto period = config_.housekeeping_interval;
  for (std::int64_t limit : {lifetime_ns_, idle_timeout_ns_}) {
    if (limit > 0) {
      period = std::min(
          period, std::chrono::duration_cast<std::chrono::milliseconds>(nanoseconds(limit / 2)));
    }
  }
  // At least daily: a longer sleep gains nothing, and milliseconds::max()
  // would overflow the clock.
  period = std::clamp(period, std::chrono::milliseconds(10),
                      std::chrono::milliseconds(std::chrono::hours(24)));
  std::unique_lock lock(housekeeper_mu_);
  while (!stop.stop_requested()) {
    housekeeper_cv_.wait_for(lock, stop, period, [] { return false; });
    if (stop.stop_requested()) break;
    lock.unlock();
    housekeep(stop);
    lock.lock();
  }
}

PoolStats PoolCore::stats() const {
  PoolStats s;
  s.name = config_.name;
  s.url = url_.redacted();
  s.backend = std::string(to_string(url_.backend()));
  s.pool_size = config_.pool_size;
  s.max_overflow = config_.max_overflow;
  s.max_connections = max_;
  s.min_idle = config_.min_idle;
  for (std::size_t i = 0; i < max_; ++i) {
    const Slot& slot = slots_[i];
    switch (slot.state.load(kRelaxed)) {
      case SlotState::kIdle:
        ++s.idle;
        break;
      case SlotState::kInUse:
        ++s.active;
        break;
      default:
        break;
    }
    s.acquires += slot.checkout_seq.load(kRelaxed) / 2;
    s.reuses += slot.reuses.load(kRelaxed);
  }
  s.open = open_count_.load(kRelaxed);
  s.pending = waiters_.load(kRelaxed);
  if (const std::int64_t since = head_since_ns_.load(kRelaxed); since != 0 && s.pending != 0) {
    s.oldest_wait = nanoseconds(std::max<std::int64_t>(0, steady_ns() - since));
  }
  s.overflow_in_use = s.open > config_.pool_size ? s.open - config_.pool_size : 0;
  s.waits = waits_.load(kRelaxed);
  s.total_wait = nanoseconds(wait_ns_.load(kRelaxed));
  s.timeouts = timeouts_.load(kRelaxed);
  s.connections_opened = opened_.load(kRelaxed);
  s.connect_failures = connect_failures_.load(kRelaxed);
  s.rollbacks_on_return = rollbacks_.load(kRelaxed);
  for (std::size_t r = 0; r < kCloseReasonCount; ++r) s.closed[r] = closed_by_[r].load(kRelaxed);
  return s;
}

std::vector<LeaseInfo> PoolCore::active_leases() const {
  std::vector<LeaseInfo> leases;
  const std::int64_t now = now_ns();
  for (std::size_t i = 0; i < max_; ++i) {
    const Slot& slot = slots_[i];
    if (slot.state.load(std::memory_order_acquire) != SlotState::kInUse) continue;
    LeaseInfo info;
    std::int64_t checked_out = 0;
    for (int attempt = 0;; ++attempt) {
      const std::uint64_t before = slot.checkout_seq.load(std::memory_order_acquire);
      checked_out = slot.checkout_ns.load(kRelaxed);
      info.site = slot.site.load(kRelaxed);
      info.thread = slot.thread.load(kRelaxed);
      info.connection_id = slot.connection_id.load(kRelaxed);
      std::atomic_thread_fence(std::memory_order_acquire);
      if ((before & 1) == 0 && before == slot.checkout_seq.load(kRelaxed)) {
        info.checkout = before / 2;
        break;
      }
      if (attempt > 100) std::this_thread::yield();
    }
    if (checked_out == 0) continue;  // claimed, record not yet written
    info.slot = slot.index;
    info.held = nanoseconds(now - checked_out);
    leases.push_back(info);
  }
  std::sort(leases.begin(), leases.end(),
            [](const LeaseInfo& a, const LeaseInfo& b) { return a.held > b.held; });
  return leases;
}

std::string PoolCore::timeout_message(nanoseconds waited, std::size_t waiting) const {
  const PoolStats s = stats();
  std::ostringstream out;
  out << "QueuePool limit of size " << config_.pool_size << " overflow " << config_.max_overflow
      << " reached: pool '" << config_.name << "' (" << url_.redacted()
      << ") gave no connection within " << std::fixed << std::setprecision(3)
      << std::chrono::duration<double>(waited).count() << " s (total=" << s.open
      << ", active=" << s.active << ", idle=" << s.idle << ", waiting=" << waiting << ")";
  struct Holder {
    std::size_t leases = 0;
    nanoseconds longest{0};
  };
  std::map<std::string, Holder> holders;
  for (const LeaseInfo& lease : active_leases()) {
    Holder& h = holders[format_site(lease.site)];
    ++h.leases;
    h.longest = std::max(h.longest, lease.held);
  }
  std::vector<std::pair<std::string, Holder>> top(holders.begin(), holders.end());
  std::sort(top.begin(), top.end(), [](const auto& a, const auto& b) {
    return a.second.leases != b.second.leases ? a.second.leases > b.second.leases
                                              : a.second.longest > b.second.longest;
  });
  if (!top.empty()) {
    out << "; leases held by ";
    for (std::size_t i = 0; i < top.size() && i < 3; ++i) {
      out << (i == 0 ? "" : ", ") << top[i].first << " (" << top[i].second.leases
          << (top[i].second.leases == 1 ? " lease" : " leases") << ", longest "
          << std::setprecision(1) << std::chrono::duration<double>(top[i].second.longest).count()
          << " s)";
    }
  }
  out << ". Hold leases for shorter spans (and release leaked ones), or raise pool_size or "
         "max_overflow";
  return out.str();
}

void PoolCore::shutdown() noexcept {
  lifeline_.end();  // PoolView reads finish now, later ones see a closed pool
  housekeeper_.request_stop();
  if (housekeeper_.joinable()) housekeeper_.join();

  std::vector<Slot*> idle;
  idle.reserve(max_);
  std::vector<LeaseInfo> leases;
  {
    MutexLock lock(mu_);
    closed_.store(true, kSeqCst);
    for (Waiter* w = head_; w != nullptr; w = w->next) w->cv.notify_one();
    while (slow_threads_ > 0) quiescent_.wait(mu_);

    // Every slot not empty now is owned by someone who will empty it once
    // the core is orphaned, decrementing outstanding_: this thread for the
    // idle ones, a lease or a release under way (kInUse, kClosing) for the
    // others.
    for (std::size_t i = 0; i < max_; ++i) {
      Slot* slot = &slots_[i];
      SlotState expected = SlotState::kIdle;
      if (slot->state.compare_exchange_strong(expected, SlotState::kClosing, kSeqCst)) {
        idle.push_back(slot);
        ++outstanding_;
      } else if (expected != SlotState::kEmpty) {
        ++outstanding_;
      }
    }
    // One extra count keeps the core alive to the end of this function; a
    // lease returning meanwhile cannot delete it.
    ++outstanding_;
    orphaned_ = true;
    leases = active_leases();
  }
  // Outside the lock, as observer.h promises on_close.
  for (Slot* slot : idle) discard(slot, CloseReason::kShutdown);
  notify(&ObserverRegistry::List::shutdown, &PoolObserver::on_shutdown, [&] {
    return ShutdownEvent{config_.name, leases};
  });
  bool remove_core = false;
  {
    MutexLock lock(mu_);
    remove_core = --outstanding_ == 0;
  }
  if (remove_core) delete this;
}

}  // namespace poolscope::detail
