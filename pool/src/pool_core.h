// PoolCore: the state behind a Pool handle. Private to poolscope::pool.
//
// Checkout is lock-free while connections are available: a thread first tries
// the slot it used last (its hint), then scans for any idle slot, claiming it
// by CAS. The mutex guards only the slow path: the FIFO queue of waiters,
// growing into empty slots, closing, and shutdown. To keep waiters first come
// first served, arrivals skip the lock-free path while anyone is queued, and
// a release that sees a waiter hands its connection over under the mutex.
// Releasers store kIdle, then read waiters_; waiters publish waiters_, then
// scan for kIdle (both seq_cst), so at least one side sees the other and no
// waiter sleeps next to an idle connection.
//
// Lifetime: the Pool handle calls shutdown(), which deletes the core at once
// when no lease is out, or leaves it orphaned for the last returning lease to
// delete. Any call that can give a slot back (give_back_empty(), discard(),
// after_idle_slow()) may therefore delete the core: callers touch no member
// afterwards. Threads counted in slow_threads_ are the exception: shutdown()
// waits for them, so the core cannot be orphaned under them.
//
// Observers are called outside mu_, as observer.h promises.
//
// The class is thread-safe. No concurrent call to any API of this type causes
// a data race.

#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "observer_registry.h"
#include "poolscope/base/lifeline.h"
#include "poolscope/base/mutex.h"
#include "poolscope/base/source_location.h"
#include "poolscope/pool/lease.h"
#include "poolscope/pool/observer.h"
#include "poolscope/pool/pool_config.h"
#include "poolscope/pool/pool_stats.h"
#include "poolscope/pool/url.h"
#include "slot.h"

namespace poolscope::detail {

inline constexpr auto kRelaxed = std::memory_order_relaxed;
inline constexpr auto kSeqCst = std::memory_order_seq_cst;

// See poolscope::checkouts_on_this_thread().
std::uint64_t thread_checkouts() noexcept;

class PoolCore {
 public:
  // config is validated and its url already parsed into url.
  PoolCore(PoolConfig config, ConnectionUrl url);
  PoolCore(const PoolCore&) = delete;
  PoolCore& operator=(const PoolCore&) = delete;

  // Opens min_idle connections and starts the housekeeper. Throws ConnectError.
  void start();

  // Checks out a connection, waiting up to checkout_timeout, and shares the
  // thread's current checkout when `share` is set. Throws PoolTimeout,
  // ConnectError and PoolClosed.
  Lease acquire(const source_location& site, bool share);

  // As acquire(share = true), but returns nullopt on timeout.
  std::optional<Lease> try_acquire(const source_location& site, std::chrono::milliseconds timeout);

  // Drops one lease's reference; the last one returns the connection.
  void release_ref(Slot* slot) noexcept;

  // Stops nested acquires on this thread from sharing the slot's checkout:
  // a lease on it was moved, perhaps to another thread.
  void unshare(Slot* slot) noexcept;

  PoolStats stats() const;
  std::vector<LeaseInfo> active_leases() const;

  Subscription add_observer(std::shared_ptr<PoolObserver> observer) {
    return observers_->add(std::move(observer));
  }

  // For PoolView: reads through it hold a guard, and shutdown() ends the
  // lifeline (waiting for them) before anything else.
  Lifeline::Watch watch() const { return lifeline_.watch(); }

  // Closes the pool; deletes this now or when the last lease comes back.
  // REQUIRES: called once, by the owning Pool.
  void shutdown() noexcept;

  const PoolConfig& config() const noexcept { return config_; }
  const ConnectionUrl& url() const noexcept { return url_; }

 private:
  // A thread queued in checkout_slow(), on its own condition variable.
  struct Waiter {
    CondVar cv;
    Slot* slot = nullptr;       // handed over by dispatch_locked()
    bool open = false;          // slot is reserved empty: open a connection into it
    std::int64_t since_ns = 0;  // steady_ns() when it queued
    Waiter* prev = nullptr;
    Waiter* next = nullptr;
  };
  ~PoolCore();

  // Checkout steps. checkout() returns the slot, or null on a timeout when
  // throw_on_timeout is false; *reused says it is the thread's shared one.
  Slot* checkout(const source_location& site, std::chrono::nanoseconds timeout, bool share,
                 bool throw_on_timeout, bool* reused);
  Slot* try_claim_idle(Slot* hint) noexcept;
  Slot* claim_idle_locked() POOLSCOPE_REQUIRES(mu_);
  Slot* reserve_empty_locked() POOLSCOPE_REQUIRES(mu_);
  Slot* checkout_slow(const source_location& site, std::chrono::nanoseconds timeout, bool* fresh,
                      std::chrono::nanoseconds* waited) POOLSCOPE_EXCLUDES(mu_);
  void leave_slow_path_locked() POOLSCOPE_REQUIRES(mu_);
  // Replaces an expired or dead connection; true when it took time (a
  // validation or a reconnect), so the caller reads the clock again.
  bool make_ready(Slot* slot, const source_location& site, std::int64_t now);
  // Opens a connection into an owned slot. On failure gives the slot back
  // (which may delete this) and throws ConnectError.
  void open_into(Slot* slot, const source_location& site);
  // Opens one more connection and leaves it idle (for min_idle). Returns
  // false when every slot is taken; throws ConnectError.
  bool open_idle();
  void dispatch_locked() POOLSCOPE_REQUIRES(mu_);

  // Return steps.
  void checkin(Slot* slot) noexcept;
  std::optional<CloseReason> reset(Slot* slot) noexcept;
  bool should_shrink() const noexcept;
  // Publishes an owned slot as idle; then serves a waiter with it, or closes
  // it if the pool has closed (which may delete this).
  void make_idle(Slot* slot) noexcept;
  void after_idle_slow(Slot* slot) noexcept POOLSCOPE_EXCLUDES(mu_);

  // Closing. close_connection() needs ownership of the slot, not the mutex.
  void close_connection(Slot* slot, CloseReason reason) noexcept POOLSCOPE_EXCLUDES(mu_);
  // Marks an owned slot empty and frees its capacity; returns true when the
  // core must now be deleted (orphaned and this was the last lease).
  bool make_empty_locked(Slot* slot) POOLSCOPE_REQUIRES(mu_);
  void give_back_empty(Slot* slot) noexcept POOLSCOPE_EXCLUDES(mu_);
  // close_connection() then give_back_empty(): may delete this.
  void discard(Slot* slot, CloseReason reason) noexcept POOLSCOPE_EXCLUDES(mu_);

  void housekeep(std::stop_token stop) noexcept;
  void housekeeper_loop(std::stop_token stop) noexcept;

  std::string timeout_message(std::chrono::nanoseconds waited, std::size_t waiting) const;
  void wait_list_push_locked(Waiter* w) POOLSCOPE_REQUIRES(mu_);
  void wait_list_remove_locked(Waiter* w) POOLSCOPE_REQUIRES(mu_);

  // Calls (observer->*callback)(event) for each observer in the list
  // `member` of the current observer list. The event is built once, by
  // make_event(), and only when someone wants it.
  template <class Event, class MakeEvent>
  void notify(std::vector<PoolObserver*> ObserverRegistry::List::*member,
              void (PoolObserver::*callback)(const Event&), MakeEvent&& make_event) const noexcept;

  // Constant after construction.
  const PoolConfig config_;
  const ConnectionUrl url_;
  const std::string connect_string_;
  const std::uint64_t id_;  // unique per process, never reused
  const std::size_t max_;   // pool_size + max_overflow
  const bool in_memory_;    // SQLite :memory: (exempt from lifetime and idle timeout)
  const std::chrono::nanoseconds checkout_timeout_;
  const std::int64_t lifetime_ns_;
  const std::int64_t idle_timeout_ns_;
  const std::int64_t validation_interval_ns_;
  const std::unique_ptr<Slot[]> slots_;
  const std::shared_ptr<ObserverRegistry> observers_;
  Lifeline lifeline_;

  // Read on every checkout and release, written rarely: their own line.
  alignas(64) std::atomic<std::size_t> waiters_{0};  // length of the wait list
  std::atomic<bool> closed_{false};
  std::atomic<std::size_t> open_count_{0};      // slots not kEmpty; written under mu_
  std::atomic<std::int64_t> head_since_ns_{0};  // the first waiter's since_ns; written under mu_

  // Counters touched off the hot path.
  alignas(64) std::atomic<std::uint64_t> waits_{0};
  std::atomic<std::int64_t> wait_ns_{0};
  std::atomic<std::uint64_t> timeouts_{0};
  std::atomic<std::uint64_t> opened_{0};
  std::atomic<std::uint64_t> connect_failures_{0};
  std::atomic<std::uint64_t> rollbacks_{0};
  std::atomic<std::uint64_t> next_connection_id_{1};
  std::array<std::atomic<std::uint64_t>, kCloseReasonCount> closed_by_{};

  // State below is protected by mu_.
  mutable Mutex mu_;
  Waiter* head_ POOLSCOPE_GUARDED_BY(mu_) = nullptr;
  Waiter* tail_ POOLSCOPE_GUARDED_BY(mu_) = nullptr;
  // Threads queued in checkout_slow(), or past it with a slot still to open
  // or to give back: shutdown() waits for them.
  int slow_threads_ POOLSCOPE_GUARDED_BY(mu_) = 0;
  CondVar quiescent_;  // slow_threads_ reached 0 after close
  bool orphaned_ POOLSCOPE_GUARDED_BY(mu_) = false;
  // Once orphaned: slots not yet empty (leases out, closes under way), plus
  // one while shutdown() runs. The core is deleted when it reaches 0.
  std::size_t outstanding_ POOLSCOPE_GUARDED_BY(mu_) = 0;

  // The housekeeper's sleep; last member so it stops before the rest goes.
  std::mutex housekeeper_mu_;
  std::condition_variable_any housekeeper_cv_;
  std::jthread housekeeper_;
};

// Inline: Pool::acquire() is the hot path, and one call layer fewer saves
// it about 30 instructions.
inline Lease PoolCore::acquire(const source_location& site, bool share) {
  bool reused = false;
  Slot* slot = checkout(site, checkout_timeout_, share, /*throw_on_timeout=*/true, &reused);
  return Lease(LeaseKey(), this, slot, slot->conn.session(), site, reused);
}

template <class Event, class MakeEvent>
void PoolCore::notify(std::vector<PoolObserver*> ObserverRegistry::List::*member,
                      void (PoolObserver::*callback)(const Event&),
                      MakeEvent&& make_event) const noexcept {
  const std::vector<PoolObserver*>& observers = observers_->current().*member;
  if (observers.empty()) return;
  const Event event = make_event();
  for (PoolObserver* observer : observers) {
    try {
      (observer->*callback)(event);
    } catch (...) {
      // Observers must not throw; one that does loses its event, nothing else.
    }
  }
}

}  // namespace poolscope::detail
