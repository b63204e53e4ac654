// PoolCore: checkout, return, and opening and closing connections. The
// invariants are in pool_core.h and slot.h.

#include "pool_core.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <random>
#include <utility>

#include "clock.h"
#include "poolscope/pool/errors.h"

namespace poolscope::detail {
namespace {

using std::chrono::nanoseconds;

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
thread_local ThreadEntry t_entries[kThreadEntries];
thread_local std::uint64_t t_token = 0;
thread_local std::uint64_t t_os_tid = 0;
thread_local std::uint64_t t_checkouts = 0;

std::atomic<std::uint64_t> g_next_token{1};
std::atomic<std::uint64_t> g_next_pool_id{1};

std::uint64_t thread_token() noexcept {
  if (t_token == 0) t_token = g_next_token.fetch_add(1, kRelaxed);
  return t_token;
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

// Adds a reference to a checkout that still has one (never revives a slot
// whose last lease was just released).
bool add_ref(Slot* slot) noexcept {
  std::uint32_t refs = slot->refs.load(kRelaxed);
  while (refs != 0) {
    if (slot->refs.compare_exchange_weak(refs, refs + 1, std::memory_order_acquire, kRelaxed)) {
      return true;
    }
  }
  return false;
}

// PoolConfig::validate() bounds the durations passed this way.
long long whole_seconds_up(std::chrono::milliseconds d) { return (d.count() + 999) / 1000; }

// The URL's connect string plus the pool's defaults for what it leaves out,
// every value quoted by the URL's backend so none can run into another.
std::string effective_connect_string(const ConnectionUrl& url, const PoolConfig& config) {
  std::vector<std::pair<std::string, std::string>> defaults;
  if (url.backend() == Backend::kPostgreSQL) {
    defaults.emplace_back("connect_timeout",
                          std::to_string(whole_seconds_up(config.connect_timeout)));
    // Shown in pg_stat_activity unless the URL names the application itself.
    defaults.emplace_back("fallback_application_name", "poolscope:" + config.name);
  } else {
    defaults.emplace_back("timeout", std::to_string(whole_seconds_up(config.sqlite_busy_timeout)));
  }
  return url.connect_string_with(defaults);
}

// d in nanoseconds, saturated: milliseconds::max() (or anything past the
// ~292 years nanoseconds hold) becomes nanoseconds::max(), "forever".
nanoseconds saturating_ns(std::chrono::milliseconds d) noexcept {
  constexpr auto kLimit = std::chrono::duration_cast<std::chrono::milliseconds>(nanoseconds::max());
  if (d >= kLimit) return nanoseconds::max();
  if (d <= -kLimit) return nanoseconds::min();
  return d;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  return s;
}

}  // namespace

std::uint64_t thread_checkouts() noexcept { return t_checkouts; }

PoolCore::PoolCore(PoolConfig config, ConnectionUrl url)
    : config_(std::move(config)),
      url_(std::move(url)),
      connect_string_(effective_connect_string(url_, config_)),
      id_(g_next_pool_id.fetch_add(1, kRelaxed)),
      max_(config_.pool_size + config_.max_overflow),
      in_memory_(url_.backend() == Backend::kSqlite && url_.sqlite_in_memory()),
      checkout_timeout_(saturating_ns(config_.checkout_timeout)),
      lifetime_ns_(in_memory_ ? 0 : saturating_ns(config_.max_lifetime).count()),
      idle_timeout_ns_(in_memory_ ? 0 : saturating_ns(config_.idle_timeout).count()),
      validation_interval_ns_(saturating_ns(config_.validation_interval).count()),
      slots_(new Slot[max_]),
      observers_(std::make_shared<ObserverRegistry>()) {
  for (std::size_t i = 0; i < max_; ++i) slots_[i].index = static_cast<std::uint32_t>(i);
}

void PoolCore::start() {
  for (std::size_t i = 0; i < config_.min_idle; ++i) {
    if (!open_idle()) break;
  }
  housekeeper_ = std::jthread([this](std::stop_token stop) { housekeeper_loop(stop); });
}

std::optional<Lease> PoolCore::try_acquire(const poolscope::source_location& site,
                                           std::chrono::milliseconds timeout) {
  bool reused = false;
  Slot* slot =
      checkout(site, saturating_ns(timeout), /*share=*/true, /*throw_on_timeout=*/false, &reused);
  if (slot == nullptr) return std::nullopt;
  // Built in place: moving the lease into the optional would end its sharing.
  return std::optional<Lease>(std::in_place, LeaseKey(), this, slot, slot->conn.session(), site,
                              reused);
}

Slot* PoolCore::checkout(const poolscope::source_location& site, nanoseconds timeout, bool share,
                         bool throw_on_timeout, bool* reused) {
  ThreadEntry* entry = entry_for(id_);
  const std::uint64_t token = thread_token();

  if (share && entry != nullptr && entry->held != nullptr) {
    Slot* slot = entry->held;
    if (slot->owner_token.load(kRelaxed) == token && add_ref(slot)) {
      // Re-check after taking the reference: the checkout may have gone
      // back (released on another thread) and out again.
      if (slot->owner_token.load(std::memory_order_acquire) == token) {
        slot->reuses.store(slot->reuses.load(kRelaxed) + 1, kRelaxed);
        notify(&ObserverRegistry::List::reuse, &PoolObserver::on_reuse, [&] {
          return ReuseEvent{config_.name, slot->connection_id.load(kRelaxed), slot->index, site};
        });
        *reused = true;
        return slot;
      }
      release_ref(slot);
    }
    entry->held = nullptr;
  }

  // Read once on the fast path: the start of the acquire and the time of the
  // checkout are the same instant there.
  const std::int64_t start = now_ns();
  Slot* slot = nullptr;
  bool fresh = false;
  nanoseconds waited{0};
  if (waiters_.load(kSeqCst) == 0 && !closed_.load(kRelaxed)) {
    slot = try_claim_idle(entry != nullptr ? entry->hint : nullptr);
  }
  if (slot == nullptr) {
    slot = checkout_slow(site, timeout, &fresh, &waited);
    if (slot == nullptr) {
      const std::size_t waiting = waiters_.load(kRelaxed) + 1;
      timeouts_.fetch_add(1, kRelaxed);
      notify(&ObserverRegistry::List::timeout, &PoolObserver::on_timeout, [&] {
        return TimeoutEvent{config_.name, site, waited};
      });
      if (throw_on_timeout) throw PoolTimeout(timeout_message(waited, waiting), waited);
      return nullptr;
    }
  }

  std::int64_t now = waited.count() == 0 && !fresh ? start : now_ns();
  if (!fresh && make_ready(slot, site, now)) now = now_ns();

  slot->reuses_at_checkout = slot->reuses.load(kRelaxed);
  slot->refs.store(1, std::memory_order_release);
  slot->owner_token.store(share ? token : 0, kRelaxed);
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
  notify(&ObserverRegistry::List::checkout, &PoolObserver::on_checkout, [&] {
    return CheckoutEvent{config_.name, slot->connection_id.load(kRelaxed),
                         slot->index,  seq / 2 + 1,
                         site,         os_thread_id(),
                         waited,       nanoseconds(now_ns() - start),
                         now};
  });
  return slot;
}

void PoolCore::unshare(Slot* slot) noexcept {
  // Only this thread's nested acquires match the token, and the slot cannot
  // be checked in and out again while the moved lease holds a reference.
  if (slot->owner_token.load(kRelaxed) != 0) slot->owner_token.store(0, kRelaxed);
  if (ThreadEntry* e = find_entry(id_); e != nullptr && e->held == slot) e->held = nullptr;
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

bool PoolCore::make_ready(Slot* slot, const source_location& site, std::int64_t now) {
  std::optional<CloseReason> reason;
  bool validated = false;
  if (now >= slot->expires_ns.load(kRelaxed)) {
    reason = CloseReason::kMaxLifetime;
  } else if (config_.validate_on_checkout &&
             now - slot->last_used_ns.load(kRelaxed) > validation_interval_ns_) {
    validated = true;
    if (!slot->conn.ping(config_.validation_query)) reason = CloseReason::kValidationFailed;
  }
  if (!reason) return validated;
  // Replace the connection in place: the slot stays ours, the capacity too.
  close_connection(slot, *reason);
  open_into(slot, site);
  return true;
}

void PoolCore::open_into(Slot* slot, const source_location& site) {
  const std::int64_t start = now_ns();
  try {
    slot->conn = Connection::open(url_, connect_string_);
  } catch (const std::exception& e) {
    const std::string reason = trim(url_.scrub(e.what()));
    const nanoseconds took(now_ns() - start);
    connect_failures_.fetch_add(1, kRelaxed);
    notify(&ObserverRegistry::List::connect_failed, &PoolObserver::on_connect_failed, [&] {
      return ConnectFailedEvent{config_.name, reason, took, site, 1};
    });
    // Built first: giving the slot back may delete this (the last lease of a
    // closed pool was the one being replaced).
    ConnectError error("pool '" + config_.name + "' cannot connect to " + url_.redacted() + ": " +
                       reason);
    give_back_empty(slot);
    throw error;
  }
  const std::int64_t done = now_ns();
  slot->created_ns = done;
  std::int64_t expires = INT64_MAX;
  if (lifetime_ns_ > 0 && lifetime_ns_ < INT64_MAX - done) {
    // Up to 2.5% earlier, as HikariCP does, so connections opened together
    // do not all expire together.
    thread_local std::minstd_rand jitter_rng(static_cast<unsigned>(os_thread_id()));
    const std::int64_t jitter = static_cast<std::int64_t>(static_cast<double>(lifetime_ns_) *
                                                          0.025 * (jitter_rng() % 1000) / 1000.0);
    expires = done + lifetime_ns_ - jitter;
  }
  slot->expires_ns.store(expires, kRelaxed);
  slot->last_used_ns.store(done, kRelaxed);
  slot->invalidated.store(false, kRelaxed);
  const std::uint64_t id = next_connection_id_.fetch_add(1, kRelaxed);
  slot->connection_id.store(id, kRelaxed);
  opened_.fetch_add(1, kRelaxed);
  notify(&ObserverRegistry::List::connect, &PoolObserver::on_connect, [&] {
    return ConnectEvent{config_.name, id, nanoseconds(done - start), site};
  });
}

bool PoolCore::open_idle() {
  Slot* slot = nullptr;
  {
    MutexLock lock(mu_);
    slot = reserve_empty_locked();
  }
  if (slot == nullptr) return false;
  open_into(slot, source_location());
  make_idle(slot);
  return true;
}

void PoolCore::release_ref(Slot* slot) noexcept {
  if (slot->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) checkin(slot);
}

void PoolCore::checkin(Slot* slot) noexcept {
  const std::int64_t now = now_ns();
  slot->owner_token.store(0, kRelaxed);
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
  Connection& conn = slot->conn;
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
  slot->state.store(SlotState::kIdle, kSeqCst);
  if (waiters_.load(kSeqCst) != 0 || closed_.load(kSeqCst)) after_idle_slow(slot);
}

void PoolCore::after_idle_slow(Slot* slot) noexcept {
  {
    MutexLock lock(mu_);
    if (!closed_.load(kRelaxed)) {
      dispatch_locked();
      return;
    }
    // The pool has closed: close the connection rather than leave it idle,
    // unless shutdown() (which counts the slot) took it first.
    SlotState expected = SlotState::kIdle;
    if (!slot->state.compare_exchange_strong(expected, SlotState::kClosing, kSeqCst)) return;
  }
  discard(slot, CloseReason::kShutdown);
}

void PoolCore::close_connection(Slot* slot, CloseReason reason) noexcept {
  const nanoseconds age(now_ns() - slot->created_ns);
  const std::uint64_t id = slot->connection_id.load(kRelaxed);
  slot->conn.close();
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
