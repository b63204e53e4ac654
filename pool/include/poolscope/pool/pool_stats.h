// PoolStats: one snapshot of a pool's gauges and counters.

#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace poolscope {

// Why a physical connection was closed.
enum class CloseReason : std::uint8_t {
  kMaxLifetime,       // older than max_lifetime
  kIdleTimeout,       // idle longer than idle_timeout
  kBroken,            // failed in use, failed its reset, or its lease was invalidated
  kValidationFailed,  // failed validation on checkout
  kOverflow,          // came back to a pool already holding pool_size idle connections
  kShutdown,          // the pool was destroyed
};
inline constexpr std::size_t kCloseReasonCount = 6;

// "max_lifetime", "idle_timeout", "broken", "validation_failed", "overflow",
// "shutdown": the label used in logs and metrics.
std::string_view to_string(CloseReason reason) noexcept;

// Gauges are read one after another, not under one lock: under load they may
// disagree by a connection in flight. Counters only grow.
struct PoolStats {
  std::string name;
  std::string url;  // redacted
  std::string backend;

  // Configuration, for context.
  std::size_t pool_size = 0;
  std::size_t max_overflow = 0;
  std::size_t max_connections = 0;  // pool_size + max_overflow
  std::size_t min_idle = 0;

  // Gauges.
  std::size_t open = 0;                     // physical connections (idle + active + opening)
  std::size_t active = 0;                   // checked out
  std::size_t idle = 0;                     // ready in the pool
  std::size_t pending = 0;                  // threads waiting in acquire()
  std::chrono::nanoseconds oldest_wait{0};  // how long the first of them has waited
  std::size_t overflow_in_use = 0;          // open connections beyond pool_size

  // Counters since the pool was created.
  std::uint64_t acquires = 0;  // checkouts from the pool
  std::uint64_t reuses = 0;    // nested acquires served by the thread's lease
  std::uint64_t waits =
      0;  // acquires that queued for a lease to come back (not for their own connect)
  std::chrono::nanoseconds total_wait{0};
  std::uint64_t timeouts = 0;
  std::uint64_t connections_opened = 0;
  std::uint64_t connect_failures = 0;
  std::uint64_t rollbacks_on_return = 0;   // leases that came back inside a transaction
  std::uint64_t statements_prepared = 0;   // by Lease::prepared(), on a server
  std::uint64_t statement_cache_hits = 0;  // executions of a statement prepared before
  std::array<std::uint64_t, kCloseReasonCount> closed{};

  std::uint64_t closed_by(CloseReason reason) const noexcept {
    return closed[static_cast<std::size_t>(reason)];
  }
  std::uint64_t closed_total() const noexcept;
};

}  // namespace poolscope
