// The calling thread's state for the pools it uses: its token (the owner
// mark of checkouts its nested acquires share), its OS thread id, its
// checkout count, and per pool the connection it shares and the one it used
// last. Thread-locals and inline functions: the checkout and return paths
// read them on every call. Private to poolscope::pool.

#pragma once

#include <atomic>
#include <cstdint>

#include "poolscope/pool/lease.h"

namespace poolscope::detail {

struct Slot;

// Per-thread state, per pool: the connection the thread's nested acquires
// share (`held`) and the slot it used last (`hint`, tried first next time so
// threads keep to their own connections). Entries are matched by pool id,
// which is never reused, so an entry left behind by a destroyed pool is
// never dereferenced. Trivial types only: no TLS guard on the hot path.
struct ThreadEntry {
  std::uint64_t pool_id;
  Slot* held;
  Slot* hint;
};
inline constexpr int kThreadEntries = 8;
extern constinit thread_local ThreadEntry t_entries[kThreadEntries];
extern constinit thread_local std::uint64_t t_os_tid;
extern constinit thread_local std::uint64_t t_checkouts;

// The next thread token (tokens are never reused).
std::uint64_t new_thread_token() noexcept;
std::uint64_t new_os_thread_id() noexcept;

inline std::uint64_t thread_token() noexcept {
  if (t_thread_token == 0) t_thread_token = new_thread_token();
  return t_thread_token;
}

inline std::uint64_t os_thread_id() noexcept {
  if (t_os_tid == 0) t_os_tid = new_os_thread_id();
  return t_os_tid;
}

inline ThreadEntry* find_entry(std::uint64_t pool_id) noexcept {
  for (ThreadEntry& e : t_entries) {
    if (e.pool_id == pool_id) return &e;
  }
  return nullptr;
}

// The thread's entry for pool_id, taking over one that holds no lease when
// needed. Null when the thread holds leases from kThreadEntries other pools:
// such a thread simply gets no reuse for this pool.
inline ThreadEntry* entry_for(std::uint64_t pool_id) noexcept {
  ThreadEntry* spare = nullptr;
  for (ThreadEntry& e : t_entries) {
    if (e.pool_id == pool_id) return &e;
    if (spare == nullptr && e.held == nullptr) spare = &e;
  }
  if (spare != nullptr) *spare = ThreadEntry{pool_id, nullptr, nullptr};
  return spare;
}

}  // namespace poolscope::detail
