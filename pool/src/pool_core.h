// PoolCore: the state behind a Pool handle. Private to poolscope::pool.
//
// Checkout is lock-free while connections are available: a thread first tries
// the slot it used last (its hint), then scans for any idle slot, claiming it
// by CAS. The mutex guards only the slow path: the FIFO queue of waiters,
// reserving empty slots for connectors, closing, and shutdown. Releasers
// store kIdle, then read waiters_; waiters publish waiters_, then scan for
// kIdle (both seq_cst), so at least one side sees the other and no waiter
// sleeps next to an idle connection.
//
// Connections are opened on connector threads of the pool's own, never on
// the caller's: a caller waits for a connection, returned or new, only until
// its deadline, however long the server takes to answer a connect (HikariCP's
// adder thread). A connector that fails retries with back-off while anyone
// waits, so a restart costs callers latency, not errors; a permanent failure
// (wrong password, no such database) fails the waiter it was opening for at
// once.
//
// Lifetime: the Pool handle calls shutdown(), which deletes the core at once
// when nothing is out, or leaves it orphaned for the last slot to come back
// (a lease, a connector) to delete. Any call that can give a slot back
// (give_back_empty(), discard()) may therefore delete the core: callers
// touch no member afterwards. shutdown() waits for the threads in the slow
// path (slow_threads_) and for returns in progress (Slot::releasing), so
// neither can be orphaned mid-way.
//
// Observers are called outside mu_, as observer.h promises.
//
// The class is thread-safe. No concurrent call to any API of this type causes
// a data race.

#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "observer_registry.h"
#include "poolscope/base/lifeline.h"
#include "poolscope/base/mutex.h"
#include "poolscope/base/periodic_worker.h"
#include "poolscope/base/source_location.h"
#include "poolscope/pool/lease.h"
#include "poolscope/pool/observer.h"
#include "poolscope/pool/pool_config.h"
#include "poolscope/pool/pool_stats.h"
#include "poolscope/pool/url.h"
#include "slot.h"

namespace poolscope::detail {

struct ThreadEntry;

inline constexpr auto kRelaxed = std::memory_order_relaxed;
inline constexpr auto kSeqCst = std::memory_order_seq_cst;

// See poolscope::checkouts_on_this_thread().
std::uint64_t thread_checkouts() noexcept;

// A point on the steady_ns() clock by which a call must return;
// kForever for none.
using Deadline = std::int64_t;
inline constexpr Deadline kForever = INT64_MAX;

// Waiting order. A returned connection wakes the first waiter, which then
// competes for it with threads arriving meanwhile (HikariCP's handoff with
// stealing): running threads never wait for a sleeping one to be scheduled,
// so 16 threads on 8 connections do not form a convoy. Once the first waiter
// has waited this long, returns go to it and arrivals queue behind it: first
// come, first served, so nobody starves and checkout_timeout stays honest.
inline constexpr std::int64_t kStarvationNs = 1'000'000;

// Connects under way at once, per pool: enough to fill a cold pool quickly,
// few enough that a black-holed server ties up only a handful of threads.
inline constexpr std::size_t kMaxConnectors = 4;

class PoolCore {
 public:
  // config is validated and its url already parsed into url.
  PoolCore(PoolConfig config, ConnectionUrl url);
  PoolCore(const PoolCore&) = delete;
  PoolCore& operator=(const PoolCore&) = delete;

  // Opens min_idle connections (on this thread) and starts the housekeeper.
  // Throws ConnectError.
  void start();

  // Checks out a connection, waiting up to checkout_timeout, and shares the
  // thread's current checkout when `share` is set. Throws PoolTimeout,
  // ConnectError and PoolClosed.
  Lease acquire(const source_location& site, bool share);

  // As acquire(share = true), but returns nullopt on timeout.
  std::optional<Lease> try_acquire(const source_location& site, std::chrono::milliseconds timeout);

  // Drops one lease's reference; the last one returns the connection.
  void release_ref(Slot* slot) noexcept;

  // A lease on slot is being used by this thread, which is not the one its
  // nested acquires are shared with: share them with this thread from now on.
  void claim_for_this_thread(Slot* slot) noexcept;

  PoolStats stats() const;
  std::vector<LeaseInfo> active_leases() const;

  Subscription add_observer(std::shared_ptr<PoolObserver> observer) {
    return observers_->add(std::move(observer));
  }

  // For PoolView: reads through it hold a guard, and shutdown() ends the
  // lifeline (waiting for them) before anything else.
  Lifeline::Watch watch() const { return lifeline_.watch(); }

  // Closes the pool; deletes this now or when the last slot comes back.
  // REQUIRES: called once, by the owning Pool.
  void shutdown() noexcept;

  const PoolConfig& config() const noexcept { return config_; }
  const ConnectionUrl& url() const noexcept { return url_; }

 private:
  struct Waiter;
  // A connector's work: open a connection into slot (kOpening), for site.
  struct ConnectJob {
    Slot* slot;
    Waiter* requester;  // guarded by mu_; null once it stopped waiting, or for min_idle
    source_location site;
  };

  // A thread queued in checkout_slow(), on its own condition variable.
  struct Waiter {
    CondVar cv;
    source_location site;       // of the acquire
    Slot* slot = nullptr;       // handed over, kInUse, by dispatch_locked() or a connector
    bool fresh = false;         // slot holds a connection just opened for it
    bool queued = false;        // in the wait list
    std::string error;          // a connector's permanent failure, for this waiter
    ConnectJob* job = nullptr;  // the connect started for this waiter, if any
    std::int64_t since_ns = 0;  // steady_ns() when it queued
    std::uint64_t failures_at_start = 0;  // connect_failures_ when it queued
    Waiter* prev = nullptr;
    Waiter* next = nullptr;
  };

  // What checkout_slow() hands back.
  struct SlowResult {
    Slot* slot = nullptr;  // null: timed out
    bool fresh = false;
    std::chrono::nanoseconds waited{0};
  };

  ~PoolCore();

  // Checkout (pool_core.cc). checkout() returns the slot, or null on a
  // timeout when throw_on_timeout is false; *reused says it is the thread's
  // shared one.
  Slot* checkout(const source_location& site, std::chrono::nanoseconds timeout, bool share,
                 bool throw_on_timeout, bool* reused);
  Slot* try_share(ThreadEntry* entry, const source_location& site, std::uint64_t token) noexcept;
  // A claimed slot and when, after any wait.
  struct Claimed {
    Slot* slot;
    std::int64_t now;
    std::chrono::nanoseconds waited;
  };
  // All but the fast path: validating or replacing what was claimed (unfit,
  // or null), more idle slots, then the wait. Null slot: timed out.
  Claimed checkout_rest(const source_location& site, std::chrono::nanoseconds timeout,
                        bool throw_on_timeout, Slot* unfit, std::int64_t start);
  // True when a claimed slot may be handed out without a look: not expired,
  // and validation not due (used within validation_interval, and not before
  // the last disconnect seen).
  bool ready_as_is(const Slot* slot, std::int64_t now) const noexcept {
    if (now >= slot->expires_ns.load(kRelaxed)) return false;
    if (!config_.validate_on_checkout) return true;
    const std::int64_t last_used = slot->last_used_ns.load(kRelaxed);
    return now - last_used <= validation_interval_ns_ &&
           last_used > suspect_before_ns_.load(kRelaxed);
  }
  Slot* try_claim_idle(Slot* hint) noexcept;
  // Makes a claimed idle slot fit to hand out: false when its connection was
  // expired or dead and has been closed (the slot stays ours, empty of a
  // connection, for recycle()).
  // deadline bounds a validation's wait.
  bool make_ready(Slot* slot, std::int64_t now, Deadline deadline);
  void publish_checkout(Slot* slot, const source_location& site, bool share, std::uint64_t token,
                        std::int64_t now, ThreadEntry* entry) noexcept;

  // Return (pool_return.cc).
  void checkin(Slot* slot) noexcept;
  // Tells the checkin observers (at least one) of a checkin at now (the
  // pool clock), while the slot still holds the lease record: one observer,
  // or each in turn.
  void report_checkin(const ObserverRegistry::List& observers, Slot* slot,
                      std::int64_t now) const noexcept;
  [[gnu::noinline]] void report_checkin_each(std::span<PoolObserver* const> observers, Slot* slot,
                                             std::int64_t now) const noexcept;
  void report_checkin_to(PoolObserver* observer, Slot* slot, std::int64_t now) const noexcept;
  // on_checkin() for an observer whose on_checkin_fast() asked for it. Out
  // of line, so report_checkin() builds no event frame.
  [[gnu::noinline]] void send_checkin_event(PoolObserver* observer, const Slot* slot,
                                            std::int64_t now) const;
  std::optional<CloseReason> reset(Slot* slot) noexcept;
  bool should_shrink() const noexcept;
  // Publishes an owned slot as idle; then serves a waiter with it, or closes
  // it if the pool has closed.
  void make_idle(Slot* slot) noexcept;
  void after_idle_slow(Slot* slot) noexcept POOLSCOPE_EXCLUDES(mu_);
  // Marks idle connections last used at or before now as suspect: after a
  // disconnect, they are validated before they are handed out.
  void suspect_idle_connections(std::int64_t now) noexcept;

  // The slow path (pool_slow_path.cc).
  // Throws PoolClosed, ConnectError, and PoolTimeout when throw_on_timeout.
  SlowResult checkout_slow(const source_location& site, std::chrono::nanoseconds timeout,
                           Deadline deadline, bool throw_on_timeout) POOLSCOPE_EXCLUDES(mu_);
  Slot* claim_idle_locked() POOLSCOPE_REQUIRES(mu_);
  Slot* reserve_empty_locked() POOLSCOPE_REQUIRES(mu_);
  // Hands idle connections, then free capacity, to the waiters in order.
  void dispatch_locked() POOLSCOPE_REQUIRES(mu_);
  // Wakes the first waiter, unless one woken is yet to run: it claims an
  // idle connection itself, in competition with arrivals.
  void wake_first_locked() POOLSCOPE_REQUIRES(mu_);
  void clear_woken_locked(const Waiter* w) POOLSCOPE_REQUIRES(mu_);
  bool has_idle_locked() const POOLSCOPE_REQUIRES(mu_);
  // True when the first waiter has waited past kStarvationNs: then every
  // returned connection goes to it and arrivals queue behind it.
  bool starving(std::int64_t now) const noexcept {
    if (waiters_.load(kSeqCst) == 0) return false;
    const std::int64_t since = head_since_ns_.load(kRelaxed);
    return since != 0 && now - since > kStarvationNs;
  }
  void wait_list_push_locked(Waiter* w) POOLSCOPE_REQUIRES(mu_);
  void wait_list_remove_locked(Waiter* w) POOLSCOPE_REQUIRES(mu_);
  void hand_over_locked(Waiter* w, Slot* slot, bool fresh) POOLSCOPE_REQUIRES(mu_);
  // A wait that ended without a connection, while the thread is still
  // counted in slow_threads_: tells the observers, then throws ConnectError
  // when connects failed meanwhile, else PoolTimeout when asked to.
  void report_timeout(const source_location& site, const Waiter& w, std::chrono::nanoseconds waited,
                      bool throw_on_timeout) POOLSCOPE_EXCLUDES(mu_);

  // Connectors (pool_connect.cc).
  // Reserves slot for a connector that opens a connection for requester
  // (null: for min_idle) and starts it.
  void start_connect_locked(Slot* slot, Waiter* requester, const source_location& site)
      POOLSCOPE_REQUIRES(mu_);
  void run_connector(ConnectJob* job) noexcept;
  // Opens a connection into an owned slot: true on success; on failure
  // *error holds the scrubbed reason.
  bool open_into(Slot* slot, const source_location& site, std::uint32_t attempt,
                 std::string* error) noexcept;
  // A new connection, under mu_: to the first waiter (true), else false and
  // the connector reports it and makes it idle (report_connect_idle()).
  bool deliver_locked(ConnectJob* job) POOLSCOPE_REQUIRES(mu_);
  // Sends the on_connect of a connection a connector opened, once.
  void report_connect(Slot* slot, const source_location& site) noexcept;
  void report_connect_idle(Slot* slot, const source_location& site) noexcept
      POOLSCOPE_EXCLUDES(mu_);
  // After make_ready() closed a claimed slot's connection: a connector
  // refills it for the waiters, or, if the pool has closed, it goes back and
  // PoolClosed is thrown.
  void recycle(Slot* slot, const source_location& site) POOLSCOPE_EXCLUDES(mu_);
  // Routes the connection's notices to the observers.
  NoticeSink notice_sink(Slot* slot) const;

  // Closing. close_connection() needs ownership of the slot, not the mutex.
  void close_connection(Slot* slot, CloseReason reason) noexcept POOLSCOPE_EXCLUDES(mu_);
  // Marks an owned slot empty and frees its capacity; returns true when the
  // core must now be deleted (orphaned and this was the last slot out).
  bool make_empty_locked(Slot* slot) POOLSCOPE_REQUIRES(mu_);
  void give_back_empty(Slot* slot) noexcept POOLSCOPE_EXCLUDES(mu_);
  // close_connection() then give_back_empty(): may delete this.
  void discard(Slot* slot, CloseReason reason) noexcept POOLSCOPE_EXCLUDES(mu_);

  // Off the checkout path (pool_maintenance.cc).
  void housekeep(std::stop_token stop) noexcept;
  std::string timeout_message(std::chrono::nanoseconds waited, std::size_t waiting) const;

  // Calls (observer->*callback)(event) for each observer in the list
  // `member` of the current observer list. The event is built once, by
  // make_event(), and only when someone wants it.
  template <class Event, class MakeEvent>
  void notify(std::vector<PoolObserver*> ObserverRegistry::List::*member,
              void (PoolObserver::*callback)(const Event&), MakeEvent&& make_event) const noexcept;

  // Constant after construction.
  const PoolConfig config_;
  const ConnectionUrl url_;
  const Driver& driver_;
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
  std::atomic<bool> wake_pending_{false};       // woken_ != nullptr; written under mu_
  // Connections last used at or before this (pool clock) are validated on
  // checkout whatever validation_interval says: a disconnect was seen.
  std::atomic<std::int64_t> suspect_before_ns_{0};

  // Counters touched off the hot path.
  alignas(64) std::atomic<std::uint64_t> waits_{0};
  std::atomic<std::int64_t> wait_ns_{0};
  std::atomic<std::uint64_t> timeouts_{0};
  std::atomic<std::uint64_t> opened_{0};
  std::atomic<std::uint64_t> connect_failures_{0};
  std::atomic<std::uint64_t> rollbacks_{0};
  std::atomic<std::uint64_t> next_connection_id_{1};
  std::array<std::atomic<std::uint64_t>, kCloseReasonCount> closed_by_{};
  StatementCounters statements_;

  // State below is protected by mu_.
  mutable Mutex mu_;
  Waiter* head_ POOLSCOPE_GUARDED_BY(mu_) = nullptr;
  Waiter* tail_ POOLSCOPE_GUARDED_BY(mu_) = nullptr;
  Waiter* woken_ POOLSCOPE_GUARDED_BY(mu_) = nullptr;  // woken by a return, yet to run
  // Threads inside checkout_slow(): shutdown() waits for them.
  int slow_threads_ POOLSCOPE_GUARDED_BY(mu_) = 0;
  CondVar quiescent_;  // slow_threads_ reached 0 after close
  // Connector threads running, and when the oldest one started (steady_ns).
  std::size_t connecting_ POOLSCOPE_GUARDED_BY(mu_) = 0;
  std::int64_t connecting_since_ns_ POOLSCOPE_GUARDED_BY(mu_) = 0;
  CondVar connector_wake_;  // ends a connector's back-off early (shutdown)
  // The last connect failure's reason (scrubbed), for ConnectError texts.
  std::string last_connect_error_ POOLSCOPE_GUARDED_BY(mu_);
  bool orphaned_ POOLSCOPE_GUARDED_BY(mu_) = false;
  // Once orphaned: slots not yet empty (leases out, connects and closes under
  // way), plus one while shutdown() runs. The core is deleted at 0.
  std::size_t outstanding_ POOLSCOPE_GUARDED_BY(mu_) = 0;

  // Last member: it stops before the rest goes.
  std::optional<PeriodicWorker> housekeeper_;
};

// Inline: Pool::acquire() is the hot path, and one call layer fewer saves
// it about 30 instructions.
inline Lease PoolCore::acquire(const source_location& site, bool share) {
  bool reused = false;
  Slot* slot = checkout(site, checkout_timeout_, share, /*throw_on_timeout=*/true, &reused);
  return Lease(LeaseKey(), this, slot, slot, &slot->conn->session(), site, reused);
}

template <class Event, class MakeEvent>
void PoolCore::notify(std::vector<PoolObserver*> ObserverRegistry::List::*member,
                      void (PoolObserver::*callback)(const Event&),
                      MakeEvent&& make_event) const noexcept {
  const std::vector<PoolObserver*>& observers = observers_->current().*member;
  if (observers.empty()) return;
  try {
    const Event event = make_event();
    for (PoolObserver* observer : observers) {
      try {
        (observer->*callback)(event);
      } catch (...) {
        // Observers must not throw; one that does loses its event, nothing else.
      }
    }
  } catch (...) {
    // Building the event failed (out of memory): the event is lost.
  }
}

}  // namespace poolscope::detail
