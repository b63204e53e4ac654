// Slot: the place of one physical connection in a pool.
//
// Ownership protocol. `state` says who may touch the connection fields:
//   kEmpty    no connection; left and entered only under the pool mutex
//   kOpening  reserved by a connector thread that opens a connection into it
//   kIdle     ready; any thread may claim it by CAS kIdle -> kInUse
//   kInUse    owned by the lease holder(s) until the last one is released
//             (or by the waiter it was handed to, which then holds the lease)
//   kClosing  claimed by CAS from kIdle by a thread that closes the
//             connection, outside the mutex, then stores kEmpty under it:
//             the housekeeper (expired, idle, surplus overflow), shutdown
//             (idle connections), or a release after shutdown
// The thread that moved the state away from kIdle/kEmpty owns `conn`,
// `created_ns` and the lease record until it stores kIdle or kEmpty again;
// the acquire/release pairs on `state` order those fields between owners.
//
// Sharing (same-thread reuse) is one word, LeaseShare::word in lease.h: the
// token of the thread whose nested acquire() may share the checkout, and the
// number of leases on it. A nested acquire adds a lease only while the token
// is its own (one CAS); a lease used on another thread moves the token there.
//
// `releasing` is set by the thread returning the slot from before it stores
// kIdle until it has stopped touching the pool: shutdown() waits for it to
// clear before it may free the pool, so a release racing ~Pool never reads
// freed memory.
//
// Fields read by other threads without ownership (the housekeeper, stats(),
// active_leases()) are atomics. The lease record is published under a
// sequence counter so a reader never mixes two checkouts.

#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>

#include "driver.h"
#include "poolscope/base/source_location.h"
#include "poolscope/pool/lease.h"

namespace poolscope::detail {

enum class SlotState : std::uint32_t { kEmpty, kOpening, kIdle, kInUse, kClosing };

struct alignas(64) Slot : LeaseShare {
  std::atomic<SlotState> state{SlotState::kEmpty};
  // Set by Lease::invalidate(): close instead of returning.
  std::atomic<bool> invalidated{false};
  // See above: a return in progress that shutdown() must wait for.
  std::atomic<bool> releasing{false};

  // Read by the housekeeper while the slot is idle.
  std::atomic<std::int64_t> last_used_ns{0};
  std::atomic<std::int64_t> expires_ns{0};

  // The lease record. checkout_seq is odd while a checkout writes the record;
  // checkout_seq / 2 is the number of checkouts of this slot so far.
  std::atomic<std::uint64_t> checkout_seq{0};
  std::atomic<std::int64_t> checkout_ns{0};
  std::atomic<source_location> site{source_location()};
  std::atomic<std::uint64_t> thread{0};
  std::atomic<std::uint64_t> connection_id{0};

  // Nested reuses; written only by the thread the checkout is shared with.
  std::atomic<std::uint64_t> reuses{0};

  // Owned (see above).
  std::unique_ptr<Connection> conn;
  std::int64_t created_ns = 0;
  std::uint64_t reuses_at_checkout = 0;  // `reuses` when the current checkout began

  // The returning checkout's figures, for its checkin's observers (the
  // lease record is still the checkout's).
  std::chrono::nanoseconds held_at(std::int64_t now) const noexcept {
    return std::chrono::nanoseconds(now - checkout_ns.load(std::memory_order_relaxed));
  }
  std::uint64_t checkout_reuses() const noexcept {
    return reuses.load(std::memory_order_relaxed) - reuses_at_checkout;
  }
  // A connection a connector opened and handed to a waiter: its on_connect
  // is sent by the waiter, on the thread that asked for it (so a tracer
  // sees the caller's stack), with the connector's figures.
  std::int64_t connect_ns = 0;  // how long the connect took; 0 once reported

  // Constant after construction.
  std::uint32_t index = 0;
};

}  // namespace poolscope::detail
