// Pool: a bounded pool of SOCI sessions with overflow, lifetime management,
// validation, call-site tracking and same-thread reuse. Link it where
// soci::connection_pool was:
//
//   poolscope::Pool pool({.url = "postgresql://app@db:5432/app", .pool_size = 10});
//   poolscope::Lease sql = pool.acquire();   // a soci::session: *sql << "...";
//
// Sizing is SQLAlchemy's QueuePool: pool_size connections are kept, up to
// max_overflow more are opened under load and closed again when they come
// back to a full pool. Waiters are served first come, first served and give
// up after checkout_timeout with a PoolTimeout that says who holds what.
// Lifetime and validation follow HikariCP: connections are recycled after
// max_lifetime, closed after idle_timeout, validated on checkout unless used
// in the last validation_interval, rolled back when they come back inside a
// transaction, and discarded when they fail.
//
// Same-thread reuse: while a thread holds a lease, a nested acquire() on the
// same pool returns a lease on the same connection instead of taking a
// second one, the way the incident code passed `session=` down by hand. The
// connection goes back when the last of those leases is released. Sharing
// follows the thread that uses a lease, so a lease moved into an optional, a
// unique_ptr or a member stays shared; see lease.h for handing one to
// another thread.
//
// Connections are opened on the pool's own threads: acquire() waits for one
// (returned or new) until its checkout_timeout, whatever the server does, and
// failed connects are retried with back-off within that time.
//
// The class is thread-safe. No concurrent call to any API of this type causes
// a data race, except destroying the pool while another thread uses it.

#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "poolscope/base/lifeline.h"
#include "poolscope/base/source_location.h"
#include "poolscope/base/subscription.h"
#include "poolscope/pool/lease.h"
#include "poolscope/pool/observer.h"
#include "poolscope/pool/pool_config.h"
#include "poolscope/pool/pool_stats.h"
#include "poolscope/pool/url.h"

namespace poolscope {

// Physical checkouts (not nested reuses) made by the calling thread so far,
// from every pool. The caches use it to measure what a load cost.
std::uint64_t checkouts_on_this_thread() noexcept;

class Pool;

// PoolView: a reference to a Pool that may be kept after the pool is gone,
// for code that reads the pool from another thread (a leak scan, a metrics
// scrape). Once the pool's destructor has started, every read returns
// nullopt; a read in progress when it starts finishes first.
//
// Copyable. The class is thread-safe. No concurrent call to any API of this
// type causes a data race.
class PoolView {
 public:
  PoolView() = default;

  std::optional<PoolStats> stats() const;
  std::optional<std::vector<LeaseInfo>> active_leases() const;

  // True once the pool's destructor has started (or for a default PoolView).
  bool expired() const;

 private:
  friend class Pool;
  detail::Lifeline::Watch watch_;
  const detail::PoolCore* core_ = nullptr;
};

class Pool {
 public:
  // Validates config (std::invalid_argument naming the field), parses its URL
  // (BadUrl), and opens min_idle connections (ConnectError if that fails).
  // Other connections are opened on demand.
  explicit Pool(PoolConfig config);

  // A pool from what SOCI code already has, a backend and its connect string:
  //   poolscope::Pool pool(soci::postgresql, "host=db dbname=app", {.pool_size = 10});
  // config.url must be empty. Throws std::invalid_argument for a backend
  // poolscope has no driver for (SOCI's postgresql and sqlite3 it has).
  Pool(const soci::backend_factory& backend, std::string_view connect_string,
       PoolConfig config = {});

  // Closes idle connections and reports leases still checked out to the
  // observers (on_shutdown). Threads waiting in acquire() get PoolClosed,
  // even one that a connection was just handed to. Leases still out are
  // closed when they come back; the pool's internals live until then, so a
  // late release is safe. Until then their sessions still work, but nothing
  // manages them any more (no max_lifetime, no housekeeping).
  ~Pool();

  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Returns a lease, waiting up to checkout_timeout. On a thread that already
  // holds a lease from this pool, returns a lease on that same connection.
  // Throws PoolTimeout, ConnectError (opening or replacing a connection
  // failed; the pool's counts are restored) or PoolClosed.
  Lease acquire(poolscope::source_location site = poolscope::source_location::current());

  // As acquire(), but waits at most timeout and returns nullopt instead of
  // throwing PoolTimeout. A zero timeout never waits: it takes an idle
  // connection or returns nullopt (starting a connect for the next caller
  // when the pool may grow); milliseconds::max() waits for as long as it
  // takes.
  std::optional<Lease> try_acquire(
      std::chrono::milliseconds timeout,
      poolscope::source_location site = poolscope::source_location::current());

  // Returns a lease on a connection of its own, even if the thread already
  // holds one: for work that must commit or roll back independently (an audit
  // row that must survive the caller's rollback). Nested acquire() calls keep
  // reusing the thread's first connection, not this one.
  //
  // Deadlock risk: the calling thread keeps its first connection while it
  // waits for a second. If every connection is held by a thread doing the
  // same, none comes back and they all wait until checkout_timeout. Keep
  // such code paths rare, or size the pool for two connections per thread.
  Lease acquire_new(poolscope::source_location site = poolscope::source_location::current());

  PoolStats stats() const;

  // The leases checked out right now, longest held first.
  std::vector<LeaseInfo> active_leases() const;

  const std::string& name() const noexcept;
  Backend backend() const noexcept;
  const std::string& redacted_url() const noexcept;

  // The configuration in effect; its url is the redacted form.
  const PoolConfig& config() const noexcept;

  // Registers an observer; it receives events from now on, until the
  // returned Subscription is destroyed or reset (whichever of it and the pool
  // goes first). Observers are meant to be few and long-lived: each change
  // copies the list, and a removed observer is kept alive until the pool is
  // destroyed, so a callback in flight on another thread never sees it freed.
  // Throws std::invalid_argument for a null observer.
  Subscription add_observer(std::shared_ptr<PoolObserver> observer);

  // A weak reference to this pool, for code on other threads that reads it
  // and may outlive it.
  PoolView view() const;

 private:
  detail::PoolCore* core_;
};

}  // namespace poolscope
