// PoolCore: the return of a connection: the last lease's release, the
// reset (rollback) and the checks that decide between idle and closed, and
// handing it to a waiter. The invariants are in pool_core.h and slot.h.

#include <optional>
#include <span>
#include <vector>

#include "clock.h"
#include "pool_core.h"
#include "thread_entry.h"

namespace poolscope::detail {

using std::chrono::nanoseconds;
constexpr std::uint64_t kRefMask = LeaseShare::kShareRefMask;

void PoolCore::release_ref(Slot* slot) noexcept {
  if (((slot->share.fetch_sub(1, std::memory_order_acq_rel)) & kRefMask) == 1) checkin(slot);
}

void PoolCore::checkin(Slot* slot) noexcept {
  const std::int64_t now = now_ns();
  slot->share.store(0, kRelaxed);
  if (ThreadEntry* e = find_entry(id_); e != nullptr && e->held == slot) e->held = nullptr;

  if (const ObserverRegistry::List& observers = observers_->current();
      observers.first_checkin != nullptr) {
    report_checkin(observers, slot, now);
  }
  slot->checkout_ns.store(0, kRelaxed);  // no lease record until the next checkout

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

// Every lease's return when a tracer is attached: the figures a counting
// observer needs go to on_checkin_fast(), and the whole event, the costlier
// part, is built only for an observer that asks for it.
inline void PoolCore::report_checkin(const ObserverRegistry::List& observers, Slot* slot,
                                     std::int64_t now) const noexcept {
  // One observer is the common case. Its call is inline, and only the
  // observer and what checkin() keeps anyway (the slot, `now`) live across
  // it, so the figures go straight from the slot into the argument
  // registers; more observers take an out-of-line loop. (The instruction
  // count shows it: docs/benchmarks.md.)
  if (!observers.more_checkins) [[likely]] {
    report_checkin_to(observers.first_checkin, slot, now);
  } else {
    report_checkin_each(observers.checkin, slot, now);
  }
}

void PoolCore::report_checkin_each(std::span<PoolObserver* const> observers, Slot* slot,
                                   std::int64_t now) const noexcept {
  for (PoolObserver* observer : observers) report_checkin_to(observer, slot, now);
}

inline void PoolCore::report_checkin_to(PoolObserver* observer, Slot* slot,
                                        std::int64_t now) const noexcept {
  // Through a pointer to member, as notify()'s calls are, so GCC does not
  // guess the default override (a compare on every call).
  constexpr auto kFast = &PoolObserver::on_checkin_fast;
  try {
    const std::int64_t checkout = slot->checkout_ns.load(kRelaxed);
    if ((observer->*kFast)(slot->site.load(kRelaxed), nanoseconds(now - checkout), checkout,
                           slot->checkout_reuses())) [[unlikely]] {
      send_checkin_event(observer, slot, now);
    }
  } catch (...) {
    // Observers must not throw; one that does loses its event, nothing else.
  }
}

void PoolCore::send_checkin_event(PoolObserver* observer, const Slot* slot,
                                  std::int64_t now) const {
  // The lease record is still the returned checkout's: the slot is ours
  // until make_idle().
  observer->on_checkin(CheckinEvent{config_.name, slot->connection_id.load(kRelaxed), slot->index,
                                    slot->checkout_seq.load(kRelaxed) / 2,
                                    slot->site.load(kRelaxed), slot->thread.load(kRelaxed),
                                    slot->held_at(now), now, slot->checkout_reuses()});
}

std::optional<CloseReason> PoolCore::reset(Slot* slot) noexcept {
  Connection& conn = *slot->conn;
  const Connection::State state = conn.state();
  if (state == Connection::State::kBroken) return CloseReason::kBroken;
  if (state == Connection::State::kInTransaction &&
      config_.reset_on_return == ResetOnReturn::kRollback) {
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
