#include "breaker.h"

#include <algorithm>
#include <utility>

namespace poolscope::cache::detail {

Breaker::Breaker(Config config, std::function<void(const Change&)> on_change)
    : config_(config), on_change_(std::move(on_change)) {
  poolscope::detail::MutexLock lock(mu_);
  backoff_ = config_.backoff;
}

Breaker::Permit Breaker::allow(bool eager) {
  if (state_.load(std::memory_order_acquire) == RedisTierState::kUp) return Permit::kGo;
  poolscope::detail::MutexLock lock(mu_);
  if (state_.load(std::memory_order_relaxed) != RedisTierState::kBackingOff) {
    // Up again since the check above, or another caller is probing.
    return state_.load(std::memory_order_relaxed) == RedisTierState::kUp ? Permit::kGo
                                                                         : Permit::kSkip;
  }
  const bool early = Clock::now() < retry_at_;
  if (early && !eager) return Permit::kSkip;
  state_.store(RedisTierState::kProbing, std::memory_order_release);
  return early ? Permit::kEagerProbe : Permit::kProbe;
}

void Breaker::record(Permit permit, bool server_failure, std::string_view error) {
  if (permit == Permit::kSkip) return;
  Change change;
  {
    if (!server_failure) {
      if (permit == Permit::kGo) {
        if (failures_.load(std::memory_order_relaxed) != 0) {
          failures_.store(0, std::memory_order_relaxed);
        }
        return;
      }
      poolscope::detail::MutexLock lock(mu_);
      failures_.store(0, std::memory_order_relaxed);
      backoff_ = config_.backoff;
      change.down_for = Clock::now() - down_since_;
      state_.store(RedisTierState::kUp, std::memory_order_release);
    } else if (permit == Permit::kEagerProbe) {
      // Still down, as the back-off assumed: it runs on unchanged.
      poolscope::detail::MutexLock lock(mu_);
      state_.store(RedisTierState::kBackingOff, std::memory_order_release);
      return;
    } else if (permit == Permit::kProbe) {
      // Still down: wait twice as long before the next probe. No news to report.
      poolscope::detail::MutexLock lock(mu_);
      backoff_ = std::min(backoff_ * 2, std::max(config_.max_backoff, config_.backoff));
      retry_at_ = Clock::now() + backoff_;
      state_.store(RedisTierState::kBackingOff, std::memory_order_release);
      return;
    } else {
      const std::size_t failures = failures_.fetch_add(1, std::memory_order_relaxed) + 1;
      if (failures < config_.failure_threshold) return;
      poolscope::detail::MutexLock lock(mu_);
      if (state_.load(std::memory_order_relaxed) != RedisTierState::kUp) return;  // already open
      const auto now = Clock::now();
      down_since_ = now;
      retry_at_ = now + backoff_;
      state_.store(RedisTierState::kBackingOff, std::memory_order_release);
      change.opened = true;
      change.failures = failures;
      change.last_error = std::string(error);
      change.backoff = backoff_;
    }
  }
  if (on_change_) on_change_(change);
}

}  // namespace poolscope::cache::detail
