// PoolCore's slow path, under mu_: the FIFO wait list, handing connections
// and free capacity to waiters (dispatch), and checkout_slow(), where a
// thread that found nothing idle grows the pool or queues.

#include <chrono>
#include <string>

#include "pool_core.h"
#include "poolscope/pool/errors.h"

namespace poolscope::detail {
namespace {

using std::chrono::nanoseconds;
using SteadyTime = std::chrono::steady_clock::time_point;

// start + timeout, or SteadyTime::max() (wait forever) if that overflows.
SteadyTime deadline_after(SteadyTime start, nanoseconds timeout) noexcept {
  return timeout >= SteadyTime::max() - start ? SteadyTime::max() : start + timeout;
}

}  // namespace

Slot* PoolCore::claim_idle_locked() {
  for (std::size_t i = 0; i < max_; ++i) {
    Slot* slot = &slots_[i];
    SlotState expected = SlotState::kIdle;
    if (slot->state.load(kSeqCst) == SlotState::kIdle &&
        slot->state.compare_exchange_strong(expected, SlotState::kInUse, kSeqCst)) {
      return slot;
    }
  }
  return nullptr;
}

Slot* PoolCore::reserve_empty_locked() {
  if (open_count_.load(kRelaxed) >= max_) return nullptr;
  for (std::size_t i = 0; i < max_; ++i) {
    Slot* slot = &slots_[i];
    if (slot->state.load(kRelaxed) == SlotState::kEmpty) {
      slot->state.store(SlotState::kOpening, kRelaxed);
      open_count_.fetch_add(1, kRelaxed);
      return slot;
    }
  }
  return nullptr;
}

void PoolCore::wait_list_push_locked(Waiter* w) {
  w->prev = tail_;
  w->next = nullptr;
  (tail_ != nullptr ? tail_->next : head_) = w;
  tail_ = w;
  head_since_ns_.store(head_->since_ns, kRelaxed);
  waiters_.fetch_add(1, kSeqCst);
}

void PoolCore::wait_list_remove_locked(Waiter* w) {
  (w->prev != nullptr ? w->prev->next : head_) = w->next;
  (w->next != nullptr ? w->next->prev : tail_) = w->prev;
  w->prev = w->next = nullptr;
  head_since_ns_.store(head_ != nullptr ? head_->since_ns : 0, kRelaxed);
  waiters_.fetch_sub(1, kSeqCst);
}

void PoolCore::dispatch_locked() {
  while (head_ != nullptr) {
    bool open = false;
    Slot* slot = claim_idle_locked();
    if (slot == nullptr) {
      slot = reserve_empty_locked();
      open = slot != nullptr;
    }
    if (slot == nullptr) return;
    Waiter* w = head_;
    wait_list_remove_locked(w);
    w->slot = slot;
    w->open = open;
    w->cv.notify_one();
  }
}

void PoolCore::leave_slow_path_locked() {
  if (--slow_threads_ == 0 && closed_.load(kRelaxed)) quiescent_.notify_all();
}

Slot* PoolCore::checkout_slow(const poolscope::source_location& site, nanoseconds timeout,
                              bool* fresh, nanoseconds* waited) {
  const SteadyTime start = std::chrono::steady_clock::now();
  Waiter w;
  w.since_ns = std::chrono::duration_cast<nanoseconds>(start.time_since_epoch()).count();
  bool queued = false;
  bool closed = false;
  {
    MutexLock lock(mu_);
    if (closed_.load(kRelaxed)) throw PoolClosed("pool '" + config_.name + "' is closed");
    if (head_ == nullptr) {
      w.slot = claim_idle_locked();
      if (w.slot == nullptr) {
        w.slot = reserve_empty_locked();
        w.open = w.slot != nullptr;
      }
    }
    if (w.slot == nullptr && timeout > nanoseconds::zero()) {
      queued = true;
      ++slow_threads_;
      wait_list_push_locked(&w);
      waits_.fetch_add(1, kRelaxed);
      dispatch_locked();  // a connection may have come back before we queued
      const SteadyTime deadline = deadline_after(start, timeout);
      while (w.slot == nullptr && !closed_.load(kRelaxed)) {
        if (deadline == SteadyTime::max()) {
          w.cv.wait(mu_);
        } else if (!w.cv.wait_until(mu_, deadline)) {
          break;
        }
      }
      if (w.slot == nullptr) wait_list_remove_locked(&w);
      // A slot handed over just before the pool closed goes back: the
      // waiter gets PoolClosed, as pool.h promises.
      closed = closed_.load(kRelaxed);
      if (closed && w.open) {
        make_empty_locked(w.slot);  // nothing opened yet; never the last count (see below)
        w.slot = nullptr;
      }
    }
    // A thread leaving the lock with a connection to open or to close stays
    // counted: shutdown() waits for it, so the core outlives it.
    const bool counted = w.slot != nullptr && (w.open || closed);
    if (queued && !counted) leave_slow_path_locked();
    if (!queued && counted) ++slow_threads_;
    if (w.slot == nullptr && closed) {
      throw PoolClosed("pool '" + config_.name + "' was closed while waiting for a connection");
    }
  }
  if (queued) {
    *waited = std::chrono::steady_clock::now() - start;
    wait_ns_.fetch_add(waited->count(), kRelaxed);
  }
  if (w.slot == nullptr || !(w.open || closed)) return w.slot;

  struct LeaveSlowPath {
    PoolCore* core;
    ~LeaveSlowPath() {
      MutexLock lock(core->mu_);
      core->leave_slow_path_locked();
    }
  } leave{this};
  if (closed) {
    PoolClosed error("pool '" + config_.name + "' was closed while waiting for a connection");
    discard(w.slot, CloseReason::kShutdown);
    throw error;
  }
  open_into(w.slot, site);  // gives the slot back and throws on failure
  if (closed_.load(kRelaxed)) {
    PoolClosed error("pool '" + config_.name + "' was closed while opening a connection");
    discard(w.slot, CloseReason::kShutdown);
    throw error;
  }
  w.slot->state.store(SlotState::kInUse, kRelaxed);
  *fresh = true;
  return w.slot;
}

}  // namespace poolscope::detail
