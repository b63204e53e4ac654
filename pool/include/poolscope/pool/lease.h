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
// released. Sharing follows the thread that uses the lease, not the syntax
// that holds it: moving a lease (into an optional, a unique_ptr, a member,
// `held = pool.acquire()`) keeps it shared with the thread's nested
// acquires, and the first use of a lease on another thread (`*lease`,
// `lease->`, `session()`) moves the sharing there, so the first thread's
// later nested acquires get a connection of their own. Hand a lease to
// another thread only while no other lease shares its connection, and let
// the first thread take no nested lease until the other thread has used it:
// they would use one session from two threads.
//
// A Lease must not be used by two threads at once (nor must a soci::session).
// It may outlive its Pool: its connection stays open until it is released,
// and is closed then (see ~Pool).

#pragma once

#include <soci/session.h>

#include <atomic>
#include <cstdint>
#include <string_view>

#include "poolscope/base/source_location.h"
#include "poolscope/pool/prepared_statement.h"

namespace poolscope {

namespace detail {
class PoolCore;
struct Slot;

// The sharing word of a checkout (see slot.h): the token of the thread whose
// nested acquires may share it, above kShareRefBits bits counting its leases.
struct LeaseShare {
  static constexpr unsigned kShareRefBits = 20;
  static constexpr std::uint64_t kShareRefMask = (std::uint64_t{1} << kShareRefBits) - 1;
  std::atomic<std::uint64_t> share{0};
};

// This thread's token (0 until the thread first takes or uses a lease).
// constinit: read inline by Lease without a TLS wrapper call.
extern constinit thread_local std::uint64_t t_thread_token;

// Only PoolCore can make one: it guards the constructor that makes a lease.
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
  Lease(detail::LeaseKey, detail::PoolCore* core, detail::Slot* slot, detail::LeaseShare* share,
        soci::session* session, const source_location& site, bool reused) noexcept
      : core_(core), slot_(slot), share_(share), session_(session), site_(site), reused_(reused) {}

  Lease(Lease&& other) noexcept;
  Lease& operator=(Lease&& other) noexcept;
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  ~Lease() { release(); }

  // The session. A first use on another thread than the last one moves the
  // sharing of nested acquires to this thread (see above).
  // REQUIRES: the lease holds a connection.
  soci::session& operator*() const noexcept { return session(); }
  soci::session* operator->() const noexcept { return &session(); }
  soci::session& session() const noexcept {
    if ((share_->share.load(std::memory_order_relaxed) >> detail::LeaseShare::kShareRefBits) !=
        detail::t_thread_token) [[unlikely]] {
      used_on_another_thread();
    }
    return *session_;
  }

  // The statement for sql prepared on this lease's connection, prepared now
  // if the connection has not seen it before; see prepared_statement.h. The
  // reference is valid while the lease holds the connection. A use of the
  // session, as session() is. REQUIRES: the lease holds a connection.
  PreparedStatement& prepared(std::string_view sql) const;

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
  const source_location& site() const noexcept { return site_; }

  // True when this lease is a nested acquire sharing the thread's connection.
  bool reused() const noexcept { return reused_; }

 private:
  void release_slow() noexcept;
  void used_on_another_thread() const noexcept;

  detail::PoolCore* core_ = nullptr;
  detail::Slot* slot_ = nullptr;
  detail::LeaseShare* share_ = nullptr;  // slot_'s, without Slot's definition
  soci::session* session_ = nullptr;
  source_location site_;
  bool reused_ = false;
};

}  // namespace poolscope
