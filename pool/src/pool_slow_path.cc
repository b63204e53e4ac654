// PoolCore's slow path, under mu_: the FIFO wait list, handing connections
// and free capacity to waiters (dispatch), and checkout_slow(), where a
// thread that found nothing idle queues until a connection is returned or
// opened for it, or its deadline passes.

#include <algorithm>
#include <chrono>
#include <string>

#include "clock.h"
#include "pool_core.h"
#include "poolscope/base/duration_text.h"
#include "poolscope/pool/errors.h"

namespace poolscope::detail {
namespace {

using std::chrono::nanoseconds;

std::chrono::steady_clock::time_point steady_time(Deadline deadline) {
  return std::chrono::steady_clock::time_point(nanoseconds(deadline));
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

bool PoolCore::has_idle_locked() const {
  for (std::size_t i = 0; i < max_; ++i) {
    if (slots_[i].state.load(kRelaxed) == SlotState::kIdle) return true;
  }
  return false;
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

void PoolCore::wake_first_locked() {
  if (woken_ != nullptr || head_ == nullptr) return;
  woken_ = head_;
  wake_pending_.store(true, kSeqCst);
  woken_->cv.notify_one();
}

void PoolCore::clear_woken_locked(const Waiter* w) {
  if (woken_ != w) return;
  woken_ = nullptr;
  wake_pending_.store(false, kSeqCst);
}

void PoolCore::wait_list_remove_locked(Waiter* w) {
  clear_woken_locked(w);
  (w->prev != nullptr ? w->prev->next : head_) = w->next;
  (w->next != nullptr ? w->next->prev : tail_) = w->prev;
  w->prev = w->next = nullptr;
  w->queued = false;
  head_since_ns_.store(head_ != nullptr ? head_->since_ns : 0, kRelaxed);
  waiters_.fetch_sub(1, kSeqCst);
}

void PoolCore::hand_over_locked(Waiter* w, Slot* slot, bool fresh) {
  wait_list_remove_locked(w);
  w->slot = slot;
  w->fresh = fresh;
  w->cv.notify_one();
}

void PoolCore::dispatch_locked() {
  while (head_ != nullptr) {
    Slot* slot = claim_idle_locked();
    if (slot == nullptr) break;
    hand_over_locked(head_, slot, /*fresh=*/false);
  }
  // Nothing idle is left for the others: open connections for them, in
  // order, as far as capacity and the connector limit allow, and no more
  // than are waited for (a connect under way serves whoever is first when it
  // finishes, as in HikariCP), so a burst does not open a connection per
  // thread that a return would have served a moment later.
  const std::size_t waiting = waiters_.load(kRelaxed);
  for (Waiter* w = head_; w != nullptr && connecting_ < std::min(waiting, kMaxConnectors);
       w = w->next) {
    if (w->job != nullptr) continue;
    Slot* slot = reserve_empty_locked();
    if (slot == nullptr) break;
    start_connect_locked(slot, w, w->site);
  }
}

PoolCore::SlowResult PoolCore::checkout_slow(const source_location& site, nanoseconds timeout,
                                             Deadline deadline, bool throw_on_timeout) {
  Waiter w;
  w.site = site;
  w.since_ns = steady_ns();
  // Counted in slow_threads_ from here to the last line that touches the
  // pool, exceptions included: shutdown() waits for such threads.
  struct LeaveSlowPath {
    PoolCore* core;
    bool counted = false;
    ~LeaveSlowPath() {
      if (!counted) return;
      MutexLock lock(core->mu_);
      if (--core->slow_threads_ == 0 && core->closed_.load(kRelaxed)) core->quiescent_.notify_all();
    }
  } leave{this};

  bool closed = false;
  // A caller for whom a connection is opened at once does not wait for a
  // lease to come back: its time is the connect's, not a queue wait.
  bool connecting_for_caller = false;
  {
    MutexLock lock(mu_);
    if (closed_.load(kRelaxed)) throw PoolClosed("pool '" + config_.name + "' is closed");
    if (head_ == nullptr) {
      if (Slot* slot = claim_idle_locked()) return {slot, false, nanoseconds(0)};
    }
    w.failures_at_start = connect_failures_.load(kRelaxed);
    if (timeout <= nanoseconds::zero()) {
      // Never waits: a connection opened now serves the next caller.
      if (connecting_ < kMaxConnectors) {
        if (Slot* slot = reserve_empty_locked()) start_connect_locked(slot, nullptr, site);
      }
    } else {
      ++slow_threads_;
      leave.counted = true;
      w.queued = true;
      wait_list_push_locked(&w);
      dispatch_locked();  // a connection may have come back before we queued
      connecting_for_caller = w.job != nullptr;
      while (w.slot == nullptr && w.error.empty() && !closed_.load(kRelaxed)) {
        if (deadline == kForever) {
          w.cv.wait(mu_);
        } else if (!w.cv.wait_until(mu_, steady_time(deadline)) && steady_ns() >= deadline) {
          break;
        }
        if (w.slot != nullptr) break;
        // Woken by a return (or spuriously): take an idle connection if an
        // arrival has not taken it first.
        clear_woken_locked(&w);
        if (Slot* slot = claim_idle_locked()) {
          wait_list_remove_locked(&w);
          w.slot = slot;
          if (woken_ == nullptr && has_idle_locked()) wake_first_locked();
        }
      }
      if (w.queued) wait_list_remove_locked(&w);
      if (w.job != nullptr) w.job->requester = nullptr;
      closed = closed_.load(kRelaxed);
    }
  }
  const bool queue_wait = leave.counted && !(connecting_for_caller && w.fresh);
  const nanoseconds waited = queue_wait ? nanoseconds(steady_ns() - w.since_ns) : nanoseconds(0);
  if (queue_wait) {
    waits_.fetch_add(1, kRelaxed);
    wait_ns_.fetch_add(waited.count(), kRelaxed);
  }
  if (closed) {
    // A slot handed over just before the pool closed goes back: the waiter
    // gets PoolClosed, as pool.h promises.
    PoolClosed error("pool '" + config_.name + "' was closed while waiting for a connection");
    if (w.slot != nullptr) discard(w.slot, CloseReason::kShutdown);
    throw error;
  }
  if (w.slot != nullptr) return {w.slot, w.fresh, waited};
  if (!w.error.empty()) {
    throw ConnectError("pool '" + config_.name + "' cannot connect to " + url_.redacted() + ": " +
                       w.error);
  }
  report_timeout(site, w, waited, throw_on_timeout);
  return {nullptr, false, waited};
}

void PoolCore::report_timeout(const source_location& site, const Waiter& w, nanoseconds waited,
                              bool throw_on_timeout) {
  timeouts_.fetch_add(1, kRelaxed);
  notify(&ObserverRegistry::List::timeout, &PoolObserver::on_timeout, [&] {
    return TimeoutEvent{config_.name, site, waited};
  });
  const std::uint64_t failures = connect_failures_.load(kRelaxed) - w.failures_at_start;
  if (failures > 0) {
    std::string last;
    {
      MutexLock lock(mu_);
      last = last_connect_error_;
    }
    throw ConnectError("pool '" + config_.name + "' cannot connect to " + url_.redacted() + ": " +
                       std::to_string(failures) + (failures == 1 ? " attempt" : " attempts") +
                       " failed within " + duration_text(waited) + "; the last: " + last);
  }
  if (!throw_on_timeout) return;
  throw PoolTimeout(timeout_message(waited, waiters_.load(kRelaxed) + 1), waited);
}

}  // namespace poolscope::detail
