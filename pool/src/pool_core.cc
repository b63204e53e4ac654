// PoolCore: the checkout fast path, same-thread sharing, and the return of a
// connection. The invariants are in pool_core.h and slot.h.

#include "pool_core.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <thread>
#include <utility>

#include "clock.h"
#include "poolscope/pool/errors.h"

namespace poolscope::detail {

constinit thread_local std::uint64_t t_thread_token = 0;

namespace {

using std::chrono::nanoseconds;
constexpr unsigned kRefBits = LeaseShare::kShareRefBits;
constexpr std::uint64_t kRefMask = LeaseShare::kShareRefMask;

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
constexpr int kThreadEntries = 8;
constinit thread_local ThreadEntry t_entries[kThreadEntries]{};
constinit thread_local std::uint64_t t_os_tid = 0;
constinit thread_local std::uint64_t t_checkouts = 0;

std::atomic<std::uint64_t> g_next_thread_token{1};
std::atomic<std::uint64_t> g_next_pool_id{1};

std::uint64_t thread_token() noexcept {
  if (t_thread_token == 0) t_thread_token = g_next_thread_token.fetch_add(1, kRelaxed);
  return t_thread_token;
}

std::uint64_t os_thread_id() noexcept {
  if (t_os_tid == 0) t_os_tid = static_cast<std::uint64_t>(::syscall(SYS_gettid));
  return t_os_tid;
}

ThreadEntry* find_entry(std::uint64_t pool_id) noexcept {
  for (ThreadEntry& e : t_entries) {
    if (e.pool_id == pool_id) return &e;
  }
  return nullptr;
}

// The thread's entry for pool_id, taking over one that holds no lease when
// needed. Null when the thread holds leases from kThreadEntries other pools:
// such a thread simply gets no reuse for this pool.
ThreadEntry* entry_for(std::uint64_t pool_id) noexcept {
  ThreadEntry* spare = nullptr;
  for (ThreadEntry& e : t_entries) {
    if (e.pool_id == pool_id) return &e;
    if (spare == nullptr && e.held == nullptr) spare = &e;
  }
  if (spare != nullptr) *spare = ThreadEntry{pool_id, nullptr, nullptr};
  return spare;
}

// d in nanoseconds, saturated: milliseconds::max() (or anything past the
// ~292 years nanoseconds hold) becomes nanoseconds::max(), "forever".
nanoseconds saturating_ns(std::chrono::milliseconds d) noexcept {
  constexpr auto kLimit = std::chrono::duration_cast<std::chrono::milliseconds>(nanoseconds::max());
  if (d >= kLimit) return nanoseconds::max();
  if (d <= -kLimit) return nanoseconds::min();
  return d;
}

// steady_ns() + timeout, saturated at kForever.
Deadline deadline_after(nanoseconds timeout) noexcept {
  const std::int64_t now = steady_ns();
  return timeout.count() >= kForever - now ? kForever : now + timeout.count();
}

// A slot just claimed from kIdle may still have its previous releaser inside
// make_idle() (slot.h): wait for it, so that two returns never overlap.
void wait_for_releaser(Slot* slot) noexcept {
  while (slot->releasing.load(std::memory_order_acquire)) std::this_thread::yield();
}

}  // namespace

std::uint64_t thread_checkouts() noexcept { return t_checkouts; }

std::uint64_t current_os_thread_id() noexcept { return os_thread_id(); }

std::uint64_t next_pool_id() noexcept { return g_next_pool_id.fetch_add(1, kRelaxed); }

std::optional<Lease> PoolCore::try_acquire(const source_location& site,
                                           std::chrono::milliseconds timeout) {
  bool reused = false;
  Slot* slot =
      checkout(site, saturating_ns(timeout), /*share=*/true, /*throw_on_timeout=*/false, &reused);
  if (slot == nullptr) return std::nullopt;
  return Lease(LeaseKey(), this, slot, slot, &slot->conn->session(), site, reused);
}

Slot* PoolCore::try_share(const source_location& site, std::uint64_t token) noexcept {
  ThreadEntry* entry = find_entry(id_);
  if (entry == nullptr || entry->held == nullptr) return nullptr;
  Slot* slot = entry->held;
  std::uint64_t word = slot->share.load(kRelaxed);
  for (;;) {
    // Only a live checkout shared with this thread (a token no other thread
    // has) may take one more lease; the CAS keeps the token from moving away
    // in between.
    const std::uint64_t refs = word & kRefMask;
    if ((word >> kRefBits) != token || refs == 0 || refs == kRefMask) {
      entry->held = nullptr;
      return nullptr;
    }
    if (slot->share.compare_exchange_weak(word, word + 1, std::memory_order_acquire, kRelaxed)) {
      break;
    }
  }
  slot->reuses.store(slot->reuses.load(kRelaxed) + 1, kRelaxed);
  notify(&ObserverRegistry::List::reuse, &PoolObserver::on_reuse, [&] {
    return ReuseEvent{config_.name, slot->connection_id.load(kRelaxed), slot->index, site};
  });
  return slot;
}

Slot* PoolCore::checkout(const source_location& site, nanoseconds timeout, bool share,
                         bool throw_on_timeout, bool* reused) {
  const std::uint64_t token = thread_token();
  if (share) {
    if (Slot* slot = try_share(site, token)) {
      *reused = true;
      return slot;
    }
  }
  // Read once on the fast path: the start of the acquire and the time of the
  // checkout are the same instant there.
  const std::int64_t start = now_ns();
  Deadline deadline = 0;  // computed when first needed
  auto deadline_now = [&] {
    if (deadline == 0) deadline = deadline_after(timeout);
    return deadline;
  };

  Slot* slot = nullptr;
  nanoseconds waited{0};
  std::int64_t now = start;
  // Waiters do not stop an arrival from taking an idle connection (that
  // would make every return a context switch: a convoy), unless the first
  // of them has waited past the starvation bound (see pool_core.h).
  if (!closed_.load(kRelaxed) && !starving(start)) {
    const ThreadEntry* entry = find_entry(id_);
    Slot* hint = entry != nullptr ? entry->hint : nullptr;
    while ((slot = try_claim_idle(hint)) != nullptr) {
      wait_for_releaser(slot);
      if (make_ready(slot, now, deadline_now)) break;
      recycle(slot, site);
      hint = nullptr;
      now = now_ns();
    }
  }
  while (slot == nullptr) {
    const SlowResult r = checkout_slow(site, timeout, deadline_now(), throw_on_timeout);
    waited += r.waited;
    if (r.slot == nullptr) return nullptr;
    now = now_ns();
    wait_for_releaser(r.slot);
    if (r.fresh) {
      report_connect(r.slot, site);
      slot = r.slot;
    } else if (make_ready(r.slot, now, deadline_now)) {
      slot = r.slot;
    } else {
      recycle(r.slot, site);
    }
  }
  if (now == start && deadline != 0) now = now_ns();  // a validation took time
  publish_checkout(slot, site, share, token, now);
  notify(&ObserverRegistry::List::checkout, &PoolObserver::on_checkout, [&] {
    return CheckoutEvent{config_.name, slot->connection_id.load(kRelaxed),
                         slot->index,  slot->checkout_seq.load(kRelaxed) / 2,
                         site,         os_thread_id(),
                         waited,       nanoseconds(now_ns() - start),
                         now};
  });
  return slot;
}

void PoolCore::publish_checkout(Slot* slot, const source_location& site, bool share,
                                std::uint64_t token, std::int64_t now) noexcept {
  slot->reuses_at_checkout = slot->reuses.load(kRelaxed);
  slot->share.store(((share ? token : 0) << kRefBits) | 1, std::memory_order_release);
  // Publish the lease record (a seqlock write, see slot.h).
  const std::uint64_t seq = slot->checkout_seq.load(kRelaxed);
  slot->checkout_seq.store(seq + 1, kRelaxed);
  std::atomic_thread_fence(std::memory_order_release);
  slot->checkout_ns.store(now, kRelaxed);
  slot->site.store(site, kRelaxed);
  slot->thread.store(os_thread_id(), kRelaxed);
  slot->checkout_seq.store(seq + 2, std::memory_order_release);
  if (ThreadEntry* entry = entry_for(id_); entry != nullptr) {
    entry->hint = slot;
    if (share) entry->held = slot;
  }
  ++t_checkouts;
}

void PoolCore::claim_for_this_thread(Slot* slot) noexcept {
  const std::uint64_t token = thread_token();
  // While the previous thread still holds other leases on this checkout
  // (nested acquires taken before this thread's first use), using the session
  // here would use it from two threads: wait for them to come back, for at
  // most checkout_timeout (a thread that never releases them is a deadlock
  // the lease.h comment warns of; after that, this thread goes ahead).
  const Deadline patience = deadline_after(checkout_timeout_);
  std::uint64_t word = slot->share.load(std::memory_order_acquire);
  for (int round = 0; (word >> kRefBits) != token; ++round) {
    if ((word >> kRefBits) == 0) return;  // acquire_new(): never shared
    if ((word & kRefMask) > 1 && steady_ns() < patience) {
      if (round < 64) {
        std::this_thread::yield();
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(100));
      }
      word = slot->share.load(std::memory_order_acquire);
      continue;
    }
    if (slot->share.compare_exchange_weak(word, (token << kRefBits) | (word & kRefMask),
                                          std::memory_order_acq_rel, std::memory_order_acquire)) {
      break;
    }
  }
  if (ThreadEntry* entry = entry_for(id_); entry != nullptr) entry->held = slot;
}

Slot* PoolCore::try_claim_idle(Slot* hint) noexcept {
  auto claim = [](Slot* slot) {
    SlotState expected = SlotState::kIdle;
    return slot->state.load(kRelaxed) == SlotState::kIdle &&
           slot->state.compare_exchange_strong(expected, SlotState::kInUse,
                                               std::memory_order_acquire, kRelaxed);
  };
  if (hint != nullptr && claim(hint)) return hint;
  // Go on from the hint (or a per-thread offset) so threads spread over the
  // slots instead of all contending for the first ones.
  const std::size_t start = hint != nullptr ? hint->index + 1 : thread_token() % max_;
  const std::size_t count = hint != nullptr ? max_ - 1 : max_;
  for (std::size_t i = 0; i < count; ++i) {
    Slot* slot = &slots_[(start + i) % max_];
    if (claim(slot)) return slot;
  }
  return nullptr;
}

template <class DeadlineFn>
bool PoolCore::make_ready(Slot* slot, std::int64_t now, DeadlineFn&& deadline) {
  std::optional<CloseReason> reason;
  if (now >= slot->expires_ns.load(kRelaxed)) {
    reason = CloseReason::kMaxLifetime;
  } else if (config_.validate_on_checkout) {
    const std::int64_t last_used = slot->last_used_ns.load(kRelaxed);
    if ((now - last_used > validation_interval_ns_ ||
         last_used <= suspect_before_ns_.load(kRelaxed)) &&
        !slot->conn->validate(config_.validation_query, deadline())) {
      reason = CloseReason::kValidationFailed;
      suspect_idle_connections(now);
    }
  }
  if (!reason) return true;
  close_connection(slot, *reason);
  return false;
}

void PoolCore::recycle(Slot* slot, const source_location& site) {
  {
    MutexLock lock(mu_);
    if (!closed_.load(kRelaxed)) {
      slot->state.store(SlotState::kOpening, kRelaxed);
      start_connect_locked(slot, nullptr, site);
      return;
    }
  }
  // Built first: giving the slot back may delete this.
  PoolClosed error("pool '" + config_.name + "' was closed while a connection was validated");
  give_back_empty(slot);
  throw error;
}

void PoolCore::suspect_idle_connections(std::int64_t now) noexcept {
  std::int64_t seen = suspect_before_ns_.load(kRelaxed);
  while (seen < now && !suspect_before_ns_.compare_exchange_weak(seen, now, kRelaxed)) {
  }
}

void PoolCore::release_ref(Slot* slot) noexcept {
  if (((slot->share.fetch_sub(1, std::memory_order_acq_rel)) & kRefMask) == 1) checkin(slot);
}

void PoolCore::checkin(Slot* slot) noexcept {
  const std::int64_t now = now_ns();
  slot->share.store(0, kRelaxed);
  if (ThreadEntry* e = find_entry(id_); e != nullptr && e->held == slot) e->held = nullptr;

  const std::int64_t checked_out = slot->checkout_ns.load(kRelaxed);
  slot->checkout_ns.store(0, kRelaxed);  // no lease record until the next checkout
  notify(&ObserverRegistry::List::checkin, &PoolObserver::on_checkin, [&] {
    return CheckinEvent{config_.name,
                        slot->connection_id.load(kRelaxed),
                        slot->index,
                        slot->checkout_seq.load(kRelaxed) / 2,
                        slot->site.load(kRelaxed),
                        slot->thread.load(kRelaxed),
                        nanoseconds(now - checked_out),
                        now,
                        slot->reuses.load(kRelaxed) - slot->reuses_at_checkout};
  });

  std::optional<CloseReason> reason;
  if (slot->invalidated.load(kRelaxed)) {
    reason = CloseReason::kBroken;
  } else {
    reason = reset(slot);
  }
  if (reason == CloseReason::kBroken) suspect_idle_connections(now);
  if (!reason && now >= slot->expires_ns.load(kRelaxed)) reason = CloseReason::kMaxLifetime;
  if (!reason && should_shrink()) reason = CloseReason::kOverflow;
  if (reason) {
    discard(slot, *reason);
    return;
  }
  slot->last_used_ns.store(now, kRelaxed);
  make_idle(slot);
}

std::optional<CloseReason> PoolCore::reset(Slot* slot) noexcept {
  Connection& conn = *slot->conn;
  if (conn.broken()) return CloseReason::kBroken;
  if (config_.reset_on_return == ResetOnReturn::kRollback && conn.in_transaction()) {
    rollbacks_.fetch_add(1, kRelaxed);
    try {
      conn.rollback();
    } catch (...) {
      return CloseReason::kBroken;
    }
    if (conn.in_transaction() || conn.broken()) return CloseReason::kBroken;
  }
  return std::nullopt;
}

// QueuePool: an overflow connection is closed when it comes back to a pool
// that already holds pool_size idle ones (and nobody is waiting for it).
// The scan stops as soon as the answer is known: at pool_size idle slots, or
// when too few slots are left to reach that many.
bool PoolCore::should_shrink() const noexcept {
  const std::size_t keep = config_.pool_size;
  if (open_count_.load(kRelaxed) <= keep || waiters_.load(kRelaxed) != 0) return false;
  std::size_t idle = 0;
  for (std::size_t i = 0; idle + (max_ - i) >= keep; ++i) {
    if (slots_[i].state.load(kRelaxed) == SlotState::kIdle && ++idle == keep) return true;
  }
  return false;
}

void PoolCore::make_idle(Slot* slot) noexcept {
  // From before the slot is idle until this thread stops touching the pool:
  // shutdown() and the slot's next claimer wait for it (slot.h).
  slot->releasing.store(true, kRelaxed);
  slot->state.store(SlotState::kIdle, kSeqCst);
  if (waiters_.load(kSeqCst) == 0 && !closed_.load(kSeqCst)) {
    slot->releasing.store(false, std::memory_order_release);
    return;
  }
  after_idle_slow(slot);
}

void PoolCore::after_idle_slow(Slot* slot) noexcept {
  if (!closed_.load(kSeqCst) && !starving(now_ns()) && wake_pending_.load(kSeqCst)) {
    // A waiter already woken will look for this connection (or an arrival
    // takes it): nothing to do, and no lock taken.
    slot->releasing.store(false, std::memory_order_release);
    return;
  }
  {
    MutexLock lock(mu_);
    if (!closed_.load(kRelaxed)) {
      if (starving(now_ns())) {
        dispatch_locked();  // first come, first served: hand it to the first waiter
      } else {
        wake_first_locked();  // it competes for it with arrivals
      }
      slot->releasing.store(false, std::memory_order_release);
      return;
    }
    // The pool has closed: close the connection rather than leave it idle,
    // unless shutdown() (which counts the slot) took it first.
    SlotState expected = SlotState::kIdle;
    const bool ours = slot->state.compare_exchange_strong(expected, SlotState::kClosing, kSeqCst);
    // Cleared before anything that may free the pool. If the slot is ours,
    // it keeps the pool alive until discard() empties it.
    slot->releasing.store(false, std::memory_order_release);
    if (!ours) return;
  }
  discard(slot, CloseReason::kShutdown);
}

void PoolCore::close_connection(Slot* slot, CloseReason reason) noexcept {
  const nanoseconds age(now_ns() - slot->created_ns);
  const std::uint64_t id = slot->connection_id.load(kRelaxed);
  slot->conn.reset();  // a Connection never throws from its destructor
  closed_by_[static_cast<std::size_t>(reason)].fetch_add(1, kRelaxed);
  notify(&ObserverRegistry::List::close, &PoolObserver::on_close, [&] {
    return CloseEvent{config_.name, id, reason, age};
  });
}

bool PoolCore::make_empty_locked(Slot* slot) {
  slot->state.store(SlotState::kEmpty, std::memory_order_release);
  open_count_.fetch_sub(1, kRelaxed);
  if (orphaned_) return --outstanding_ == 0;
  if (!closed_.load(kRelaxed)) dispatch_locked();  // the freed capacity may serve a waiter
  return false;
}

void PoolCore::give_back_empty(Slot* slot) noexcept {
  bool remove_core = false;
  {
    MutexLock lock(mu_);
    remove_core = make_empty_locked(slot);
  }
  if (remove_core) delete this;
}

void PoolCore::discard(Slot* slot, CloseReason reason) noexcept {
  close_connection(slot, reason);
  give_back_empty(slot);
}

}  // namespace poolscope::detail
