// Slot: the place of one physical connection in a pool.
//
// Ownership protocol. `state` says who may touch the connection fields:
//   kEmpty    no connection; left and entered only under the pool mutex
//   kOpening  reserved by one thread that is opening a connection into it
//   kIdle     ready; any thread may claim it by CAS kIdle -> kInUse
//   kInUse    owned by the lease holder(s) until the last one is released
//   kClosing  claimed by CAS from kIdle by a thread that closes the
//             connection, outside the mutex, then stores kEmpty under it:
//             the housekeeper (expired, idle, surplus overflow), shutdown
//             (idle connections), or a release after shutdown
// The thread that moved the state away from kIdle/kEmpty owns `conn`,
// `created_ns` and the lease record until it stores kIdle or kEmpty again;
// the acquire/release pairs on `state` order those fields between owners.
//
// Fields read by other threads without ownership (the housekeeper, stats(),
// active_leases()) are atomics. The lease record is published under a
// sequence counter so a reader never mixes two checkouts.

#pragma once

#include <atomic>
#include <cstdint>

#include "connection.h"
#include "poolscope/base/source_location.h"

namespace poolscope::detail {

enum class SlotState : std::uint32_t { kEmpty, kOpening, kIdle, kInUse, kClosing };

struct alignas(64) Slot {
  std::atomic<SlotState> state{SlotState::kEmpty};
  // Leases sharing the current checkout; the connection goes back at zero.
  std::atomic<std::uint32_t> refs{0};
  // Set by Lease::invalidate(): close instead of returning.
  std::atomic<bool> invalidated{false};
  // The thread whose nested acquire() may share this checkout (0: none).
  // Cleared at check-in and when a lease on the checkout is moved.
  std::atomic<std::uint64_t> owner_token{0};

  // Read by the housekeeper while the slot is idle.
  std::atomic<std::int64_t> last_used_ns{0};
  std::atomic<std::int64_t> expires_ns{0};

  // The lease record. checkout_seq is odd while a checkout writes the record;
  // checkout_seq / 2 is the number of checkouts of this slot so far.
  std::atomic<std::uint64_t> checkout_seq{0};
  std::atomic<std::int64_t> checkout_ns{0};
  std::atomic<poolscope::source_location> site{poolscope::source_location()};
  std::atomic<std::uint64_t> thread{0};
  std::atomic<std::uint64_t> connection_id{0};

  // Nested reuses; written only by the thread the checkout is shared with.
  std::atomic<std::uint64_t> reuses{0};

  // Owned (see above).
  Connection conn;
  std::int64_t created_ns = 0;
  std::uint64_t reuses_at_checkout = 0;  // `reuses` when the current checkout began

  // Constant after construction.
  std::uint32_t index = 0;
};

}  // namespace poolscope::detail
