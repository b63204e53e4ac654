// PoolCore: the checkout fast path and same-thread sharing (the return is in
// pool_return.cc). The invariants are in pool_core.h and slot.h.

#include "pool_core.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <thread>
#include <utility>

#include "clock.h"
#include "poolscope/pool/errors.h"
#include "thread_entry.h"

namespace poolscope::detail {

constinit thread_local std::uint64_t t_thread_token = 0;
constinit thread_local ThreadEntry t_entries[kThreadEntries]{};
constinit thread_local std::uint64_t t_os_tid = 0;
constinit thread_local std::uint64_t t_checkouts = 0;

namespace {

std::atomic<std::uint64_t> g_next_thread_token{1};
std::atomic<std::uint64_t> g_next_pool_id{1};

using std::chrono::nanoseconds;
constexpr unsigned kRefBits = LeaseShare::kShareRefBits;
constexpr std::uint64_t kRefMask = LeaseShare::kShareRefMask;

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

std::uint64_t new_thread_token() noexcept { return g_next_thread_token.fetch_add(1, kRelaxed); }

std::uint64_t new_os_thread_id() noexcept {
  return static_cast<std::uint64_t>(::syscall(SYS_gettid));
}

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

Slot* PoolCore::try_share(ThreadEntry* entry, const source_location& site,
                          std::uint64_t token) noexcept {
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
  ThreadEntry* entry = entry_for(id_);
  const std::uint64_t token = thread_token();
  if (share && entry != nullptr && entry->held != nullptr) {
    if (Slot* slot = try_share(entry, site, token)) {
      *reused = true;
      return slot;
    }
  }
  // Read once on the fast path: the start of the acquire and the time of the
  // checkout are the same instant there.
  const std::int64_t start = now_ns();
  Claimed claimed{nullptr, start, nanoseconds(0)};
  // Waiters do not stop an arrival from taking an idle connection (that
  // would make every return a context switch: a convoy), unless the first
  // of them has waited past the starvation bound (see pool_core.h).
  if (!closed_.load(kRelaxed) && !starving(start)) {
    claimed.slot = try_claim_idle(entry != nullptr ? entry->hint : nullptr);
    if (claimed.slot != nullptr) wait_for_releaser(claimed.slot);
  }
  if (claimed.slot == nullptr || !ready_as_is(claimed.slot, start)) {
    claimed = checkout_rest(site, timeout, throw_on_timeout, claimed.slot, start);
    if (claimed.slot == nullptr) return nullptr;
  }
  Slot* slot = claimed.slot;
  publish_checkout(slot, site, share, token, claimed.now, entry);
  notify(&ObserverRegistry::List::checkout, &PoolObserver::on_checkout, [&] {
    return CheckoutEvent{config_.name,   slot->connection_id.load(kRelaxed),
                         slot->index,    slot->checkout_seq.load(kRelaxed) / 2,
                         site,           os_thread_id(),
                         claimed.waited, nanoseconds(now_ns() - start),
                         claimed.now};
  });
  return slot;
}

PoolCore::Claimed PoolCore::checkout_rest(const source_location& site, nanoseconds timeout,
                                          bool throw_on_timeout, Slot* unfit, std::int64_t start) {
  const Deadline deadline = deadline_after(timeout);
  std::int64_t now = start;
  // A connection claimed but expired or in need of validation.
  for (Slot* slot = unfit; slot != nullptr; slot = try_claim_idle(nullptr)) {
    if (slot != unfit) wait_for_releaser(slot);
    if (make_ready(slot, now, deadline)) return {slot, now_ns(), nanoseconds(0)};
    recycle(slot, site);
    now = now_ns();
    if (closed_.load(kRelaxed) || starving(now)) break;
  }
  nanoseconds waited{0};
  for (;;) {
    const SlowResult r = checkout_slow(site, timeout, deadline, throw_on_timeout);
    waited += r.waited;
    if (r.slot == nullptr) return {nullptr, 0, waited};
    now = now_ns();
    wait_for_releaser(r.slot);
    if (r.fresh) {
      report_connect(r.slot, site);
      return {r.slot, now, waited};
    }
    if (ready_as_is(r.slot, now) || make_ready(r.slot, now, deadline)) {
      return {r.slot, now_ns(), waited};
    }
    recycle(r.slot, site);
  }
}

void PoolCore::publish_checkout(Slot* slot, const source_location& site, bool share,
                                std::uint64_t token, std::int64_t now,
                                ThreadEntry* entry) noexcept {
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
  if (entry != nullptr) {
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

bool PoolCore::make_ready(Slot* slot, std::int64_t now, Deadline deadline) {
  std::optional<CloseReason> reason;
  if (now >= slot->expires_ns.load(kRelaxed)) {
    reason = CloseReason::kMaxLifetime;
  } else if (config_.validate_on_checkout) {
    const std::int64_t last_used = slot->last_used_ns.load(kRelaxed);
    if ((now - last_used > validation_interval_ns_ ||
         last_used <= suspect_before_ns_.load(kRelaxed)) &&
        !slot->conn->validate(config_.validation_query, deadline)) {
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

}  // namespace poolscope::detail
