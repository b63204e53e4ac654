// Lease: a checked-out connection, as a real soci::session.
//
// `*lease` and `lease->` give the session, so SOCI code runs unchanged:
//
//   poolscope::Lease sql = pool.acquire();
//   *sql << "select value from settings where key = :k", soci::use(key), soci::into(value);
//
// A Lease is move-only; destroying it (or release()) hands the connection
// back, rolled back if a transaction was left open. Nested leases taken on
// the same thread share one connection; it goes back when the last of them is
// released. Moving a lease ends that sharing: the move may be taking it to
// another thread, so later nested acquire() calls get a connection of their
// own. (Move a lease to another thread only when no other lease shares its
// connection: they would use one session from two threads.)
//
// A Lease must not be used by two threads at once (nor must a soci::session).
// It may outlive its Pool: its connection stays open until it is released,
// and is closed then (see ~Pool).

#pragma once

#include <soci/session.h>

#include <cstdint>

#include "poolscope/base/source_location.h"

namespace poolscope {

namespace detail {
class PoolCore;
struct Slot;

// Only PoolCore can make one: it guards the constructor that makes a lease,
// which is public so that PoolCore can build a lease in place (inside a
// std::optional, without a move that would end its sharing).
class LeaseKey {
  friend class PoolCore;
  LeaseKey() = default;
};
}  // namespace detail

class Lease {
 public:
  // An empty lease, holding nothing.
  Lease() noexcept = default;

  // A lease on a checked-out slot. For PoolCore only (see LeaseKey).
  Lease(detail::LeaseKey, detail::PoolCore* core, detail::Slot* slot, soci::session* session,
        const poolscope::source_location& site, bool reused) noexcept
      : core_(core), slot_(slot), session_(session), site_(site), reused_(reused) {}

  // Moves end sharing with nested acquires (see above).
  Lease(Lease&& other) noexcept;
  Lease& operator=(Lease&& other) noexcept;
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  ~Lease() { release(); }

  // The session. REQUIRES: the lease holds a connection.
  soci::session& operator*() const noexcept { return *session_; }
  soci::session* operator->() const noexcept { return session_; }
  soci::session& session() const noexcept { return *session_; }

  // True unless empty, moved from or released.
  explicit operator bool() const noexcept { return slot_ != nullptr; }

  // Gives the connection back now; the lease becomes empty. Never throws.
  void release() noexcept {
    if (slot_ != nullptr) release_slow();
  }

  // Marks the connection broken: when its last lease is released it is
  // closed instead of returned (SQLAlchemy's invalidate()). For code that
  // knows the connection is unusable, e.g. after a protocol error.
  void invalidate() noexcept;

  // The pool's id of the physical connection, as in the session log.
  std::uint64_t connection_id() const noexcept;

  // Where this lease was acquired.
  const poolscope::source_location& site() const noexcept { return site_; }

  // True when this lease is a nested acquire sharing the thread's connection.
  bool reused() const noexcept { return reused_; }

 private:
  void release_slow() noexcept;

  detail::PoolCore* core_ = nullptr;
  detail::Slot* slot_ = nullptr;
  soci::session* session_ = nullptr;
  poolscope::source_location site_;
  bool reused_ = false;
};

}  // namespace poolscope
