// Breaker: the tier's circuit breaker. After failure_threshold calls in a
// row fail as server failures (down, hung, refusing), it opens: no call
// goes to Redis for the back-off period, so a dead Redis costs a read
// nothing instead of a timeout each. When the period ends, one caller
// probes; success closes the breaker, failure opens it again for twice the
// period (up to max_backoff).
//
// Only the two visible changes (up -> backing off, back up) are reported,
// through on_change, once each, outside the breaker's lock.
//
// The class is thread-safe. No concurrent call to any API of this type causes
// a data race.

#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "poolscope/base/mutex.h"
#include "poolscope/cache/redis/redis_stats.h"

namespace poolscope::cache::detail {

class Breaker {
 public:
  struct Config {
    std::size_t failure_threshold = 3;
    std::chrono::milliseconds backoff{1000};
    std::chrono::milliseconds max_backoff{30'000};
  };
  // What changed: opened (with the last failure and the back-off) or closed
  // (with how long Redis was unavailable).
  struct Change {
    bool opened = false;
    std::size_t failures = 0;
    std::string last_error;
    std::chrono::milliseconds backoff{0};
    std::chrono::nanoseconds down_for{0};
  };

  // What allow() granted. kEagerProbe: a probe before the back-off ended;
  // failing, it leaves the back-off as it was.
  enum class Permit { kGo, kProbe, kEagerProbe, kSkip };

  Breaker(Config config, std::function<void(const Change&)> on_change);

  // Whether a call may go to Redis now; kProbe: this caller is the one
  // probe after a back-off, and must report its outcome with record().
  // eager: probe now, before the back-off ends (a background caller that
  // must know as soon as Redis answers; the read path never is one).
  Permit allow(bool eager = false);
  // The outcome of a call allow() let through.
  void record(Permit permit, bool server_failure, std::string_view error);

  RedisTierState state() const noexcept { return state_.load(std::memory_order_acquire); }

 private:
  using Clock = std::chrono::steady_clock;

  const Config config_;
  const std::function<void(const Change&)> on_change_;

  // Read without the lock on every call (acquire: a caller seeing kUp sees
  // the reset that preceded it); written under mu_.
  std::atomic<RedisTierState> state_{RedisTierState::kUp};
  // Consecutive failures while up. Relaxed: a count, exact enough.
  std::atomic<std::size_t> failures_{0};

  poolscope::detail::Mutex mu_;
  Clock::time_point retry_at_ POOLSCOPE_GUARDED_BY(mu_);
  Clock::time_point down_since_ POOLSCOPE_GUARDED_BY(mu_);
  std::chrono::milliseconds backoff_ POOLSCOPE_GUARDED_BY(mu_);
};

}  // namespace poolscope::cache::detail
