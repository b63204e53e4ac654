// Sessions avoided: how poolscope's caches count the pool checkouts their
// hits made unnecessary, without being told.
//
// When a cache loads an entry it notes how many checkouts the load made on
// its thread (poolscope::checkouts_on_this_thread()) plus the sessions that
// hits in other caches saved during the load; that is the entry's cost.
// Every later hit on the entry credits the cost, to the cache and to the
// thread. So a settings entry loaded with one query costs 1, and an account
// object whose constructor read three settings (whether from the database
// or from a settings cache) costs 3: a hit on it spares what building it
// again would have taken, and counting adds up across layered caches
// without counting anything twice.

#pragma once

#include <cstdint>

namespace poolscope::cache {

// Sessions that cache hits spared on the calling thread so far.
std::uint64_t sessions_avoided_on_this_thread() noexcept;

namespace detail {

// Sessions avoided on this thread. Inline, so that a hit, which credits it,
// touches a thread-local word instead of calling into another file.
inline thread_local std::uint64_t t_sessions_avoided = 0;

// Credits n sessions avoided to the calling thread.
inline void credit_sessions_avoided(std::uint64_t n) noexcept { t_sessions_avoided += n; }

// Checkouts made plus sessions avoided on this thread: the running total a
// load's cost is measured against.
std::uint64_t session_cost_clock() noexcept;

}  // namespace detail
}  // namespace poolscope::cache
