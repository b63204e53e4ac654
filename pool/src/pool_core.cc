#include "pool_core.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <iomanip>
#include <map>
#include <random>
#include <sstream>
#include <utility>

#include "clock.h"
#include "poolscope/pool/errors.h"
#include "poolscope/pool/site.h"

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

bool has_parameter(const std::string& connect, std::string_view key) {
  for (std::size_t pos = connect.find(key); pos != std::string::npos;
       pos = connect.find(key, pos + 1)) {
    const bool at_start = pos == 0 || connect[pos - 1] == ' ';
    std::size_t eq = pos + key.size();
    while (eq < connect.size() && connect[eq] == ' ') ++eq;
    if (at_start && eq < connect.size() && connect[eq] == '=') return true;
  }
  return false;
}

long long whole_seconds_up(std::chrono::milliseconds d) {
  return (d.count() + 999) / 1000;
}

// The URL's connect string plus the pool's defaults for what it leaves out.
std::string effective_connect_string(const ConnectionUrl& url, const PoolConfig& config) {
  std::string s = url.connect_string();
  if (url.backend() == Backend::kPostgreSQL) {
    if (!has_parameter(s, "connect_timeout")) {
      s += " connect_timeout=" + std::to_string(whole_seconds_up(config.connect_timeout));
    }
    // Shown in pg_stat_activity unless the URL names the application itself.
    if (!has_parameter(s, "fallback_application_name")) {
      s += " fallback_application_name='poolscope:" + config.name + "'";
    }
  } else if (!has_parameter(s, "timeout")) {
    s += " timeout=" + std::to_string(whole_seconds_up(config.sqlite_busy_timeout));
  }
  return s;
}

std::int64_t to_ns(std::chrono::milliseconds d) {
  return std::chrono::duration_cast<nanoseconds>(d).count();
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
      lifetime_ns_(in_memory_ ? 0 : to_ns(config_.max_lifetime)),
      idle_timeout_ns_(in_memory_ ? 0 : to_ns(config_.idle_timeout)),
      validation_interval_ns_(to_ns(config_.validation_interval)),
      slots_(new Slot[max_]) {
  for (std::size_t i = 0; i < max_; ++i) slots_[i].index = static_cast<std::uint32_t>(i);
  MutexLock lock(observers_mu_);
  observer_lists_.push_back(index_observers({}));
  observers_.store(observer_lists_.back().get(), std::memory_order_release);
}

void PoolCore::start() {
  for (std::size_t i = 0; i < config_.min_idle; ++i) {
    Slot* slot = nullptr;
    {
      MutexLock lock(mu_);
      slot = reserve_empty_locked();
    }
    if (slot == nullptr) break;
    open_into(slot, nullptr);
    slot->state.store(SlotState::kIdle, kSeqCst);
  }
  housekeeper_ = std::jthread([this](std::stop_token stop) { housekeeper_loop(stop); });
}

Lease PoolCore::checkout(const std::source_location& site, nanoseconds timeout, bool share,
                         bool throw_on_timeout) {
  ThreadEntry* entry = entry_for(id_);
  const std::uint64_t token = thread_token();

  if (share && entry != nullptr && entry->held != nullptr) {
    Slot* slot = entry->held;
    if (slot->owner_token.load(kRelaxed) == token && add_ref(slot)) {
      // Re-check after taking the reference: the checkout may have gone
      // back and out again through a lease moved to another thread.
      if (slot->owner_token.load(std::memory_order_acquire) == token) {
        slot->reuses.store(slot->reuses.load(kRelaxed) + 1, kRelaxed);
        const std::uint64_t id = slot->connection_id.load(kRelaxed);
        notify(&ObserverList::reuse, [&](PoolObserver& o) { o.on_reuse({config_.name, id, slot->index, site}); });
        return Lease(this, slot, slot->conn.session(), site, true);
      }
      release_ref(slot);
    }
    entry->held = nullptr;
  }

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
      notify(&ObserverList::timeout, [&](PoolObserver& o) { o.on_timeout({config_.name, site, waited}); });
      if (throw_on_timeout) throw PoolTimeout(timeout_message(waited, waiting), waited);
      return Lease();
    }
  }

  const std::int64_t now = now_ns();
  if (!fresh) make_ready(slot, site, now);

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
  const std::uint64_t id = slot->connection_id.load(kRelaxed);
  notify(&ObserverList::checkout, [&](PoolObserver& o) {
    o.on_checkout({config_.name, id, slot->index, seq / 2 + 1, site, os_thread_id(), waited});
  });
  return Lease(this, slot, slot->conn.session(), site, false);
}

Slot* PoolCore::try_claim_idle(Slot* hint) noexcept {
  auto claim = [](Slot* slot) {
    SlotState expected = SlotState::kIdle;
    return slot->state.load(kRelaxed) == SlotState::kIdle &&
           slot->state.compare_exchange_strong(expected, SlotState::kInUse,
                                               std::memory_order_acquire, kRelaxed);
  };
  if (hint != nullptr && claim(hint)) return hint;
  // Start where this thread's hint is (or a per-thread offset) so threads
  // spread over the slots instead of all contending for the first ones.
  const std::size_t start = hint != nullptr ? hint->index : thread_token() % max_;
  for (std::size_t i = 0; i < max_; ++i) {
    Slot* slot = &slots_[(start + i) % max_];
    if (claim(slot)) return slot;
  }
  return nullptr;
}

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
  waiters_.fetch_add(1, kSeqCst);
}

void PoolCore::wait_list_remove_locked(Waiter* w) {
  (w->prev != nullptr ? w->prev->next : head_) = w->next;
  (w->next != nullptr ? w->next->prev : tail_) = w->prev;
  w->prev = w->next = nullptr;
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

Slot* PoolCore::checkout_slow(const std::source_location& site, nanoseconds timeout, bool* fresh,
                              nanoseconds* waited) {
  const auto start = std::chrono::steady_clock::now();
  Waiter w;
  bool queued = false;
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
      const auto deadline = start + timeout;
      while (w.slot == nullptr && !closed_.load(kRelaxed)) {
        if (!w.cv.wait_until(mu_, deadline)) break;
      }
      if (w.slot == nullptr) wait_list_remove_locked(&w);
      if (--slow_threads_ == 0 && closed_.load(kRelaxed)) quiescent_.notify_all();
    }
    if (w.slot == nullptr && closed_.load(kRelaxed)) {
      throw PoolClosed("pool '" + config_.name + "' was closed while waiting for a connection");
    }
    if (w.open) ++slow_threads_;  // shutdown waits for the open to finish
  }
  if (queued) {
    *waited = std::chrono::steady_clock::now() - start;
    wait_ns_.fetch_add(waited->count(), kRelaxed);
  }
  if (w.slot == nullptr || !w.open) return w.slot;

  // Open a connection into the reserved slot, outside the lock.
  struct LeaveSlowPath {
    PoolCore* core;
    ~LeaveSlowPath() {
      MutexLock lock(core->mu_);
      if (--core->slow_threads_ == 0 && core->closed_.load(kRelaxed)) {
        core->quiescent_.notify_all();
      }
    }
  } leave{this};
  open_into(w.slot, &site);  // gives the slot back and throws on failure
  if (closed_.load(kRelaxed)) {
    close_connection(w.slot, CloseReason::kShutdown);
    give_back_empty(w.slot);
    throw PoolClosed("pool '" + config_.name + "' was closed while opening a connection");
  }
  w.slot->state.store(SlotState::kInUse, kRelaxed);
  *fresh = true;
  return w.slot;
}

void PoolCore::make_ready(Slot* slot, const std::source_location& site, std::int64_t now) {
  std::optional<CloseReason> reason;
  if (now >= slot->expires_ns.load(kRelaxed)) {
    reason = CloseReason::kMaxLifetime;
  } else if (config_.validate_on_checkout &&
             now - slot->last_used_ns.load(kRelaxed) > validation_interval_ns_ &&
             !slot->conn.ping(config_.validation_query)) {
    reason = CloseReason::kValidationFailed;
  }
  if (!reason) return;
  // Replace the connection in place: the slot stays ours, the capacity too.
  close_connection(slot, *reason);
  open_into(slot, &site);
}

void PoolCore::open_into(Slot* slot, const std::source_location* site) {
  const std::int64_t start = now_ns();
  try {
    slot->conn = Connection::open(url_, connect_string_);
  } catch (const std::exception& e) {
    const std::string reason = trim(url_.scrub(e.what()));
    const nanoseconds took(now_ns() - start);
    connect_failures_.fetch_add(1, kRelaxed);
    notify(&ObserverList::connect_failed, [&](PoolObserver& o) { o.on_connect_failed({config_.name, reason, took, site}); });
    give_back_empty(slot);
    throw ConnectError("pool '" + config_.name + "' cannot connect to " + url_.redacted() +
                       ": " + reason);
  }
  const std::int64_t done = now_ns();
  slot->created_ns = done;
  std::int64_t expires = INT64_MAX;
  if (lifetime_ns_ > 0) {
    // Up to 2.5% earlier, as HikariCP does, so connections opened together
    // do not all expire together.
    thread_local std::minstd_rand jitter_rng(static_cast<unsigned>(os_thread_id()));
    const std::int64_t jitter = static_cast<std::int64_t>(
        static_cast<double>(lifetime_ns_) * 0.025 * (jitter_rng() % 1000) / 1000.0);
    expires = done + lifetime_ns_ - jitter;
  }
  slot->expires_ns.store(expires, kRelaxed);
  slot->last_used_ns.store(done, kRelaxed);
  slot->invalidated.store(false, kRelaxed);
  const std::uint64_t id = next_connection_id_.fetch_add(1, kRelaxed);
  slot->connection_id.store(id, kRelaxed);
  opened_.fetch_add(1, kRelaxed);
  notify(&ObserverList::connect, [&](PoolObserver& o) { o.on_connect({config_.name, id, nanoseconds(done - start), site}); });
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
  if (const ObserverList* observers = observers_.load(std::memory_order_acquire); !observers->checkin.empty()) {
    const CheckinEvent event{config_.name,
                             slot->connection_id.load(kRelaxed),
                             slot->index,
                             slot->checkout_seq.load(kRelaxed) / 2,
                             slot->site.load(kRelaxed),
                             slot->thread.load(kRelaxed),
                             nanoseconds(now - checked_out)};
    for (PoolObserver* observer : observers->checkin) {
      try {
        observer->on_checkin(event);
      } catch (...) {
        // As notify(): a throwing observer loses its event, nothing else.
      }
    }
  }

  std::optional<CloseReason> reason;
  if (slot->invalidated.load(kRelaxed)) {
    reason = CloseReason::kBroken;
  } else {
    reason = reset(slot);
  }
  if (!reason && now >= slot->expires_ns.load(kRelaxed)) reason = CloseReason::kMaxLifetime;
  if (!reason && should_shrink()) reason = CloseReason::kOverflow;
  if (reason) {
    close_connection(slot, *reason);
    give_back_empty(slot);
    return;
  }
  slot->last_used_ns.store(now, kRelaxed);
  slot->state.store(SlotState::kIdle, kSeqCst);
  if (waiters_.load(kSeqCst) != 0 || closed_.load(kSeqCst)) after_idle_slow(slot);
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
bool PoolCore::should_shrink() const noexcept {
  if (open_count_.load(kRelaxed) <= config_.pool_size || waiters_.load(kRelaxed) != 0) {
    return false;
  }
  std::size_t idle = 0;
  for (std::size_t i = 0; i < max_; ++i) {
    if (slots_[i].state.load(kRelaxed) == SlotState::kIdle) ++idle;
  }
  return idle >= config_.pool_size;
}

void PoolCore::after_idle_slow(Slot* slot) noexcept {
  bool remove_core = false;
  {
    MutexLock lock(mu_);
    if (closed_.load(kRelaxed)) {
      SlotState expected = SlotState::kIdle;
      if (slot->state.compare_exchange_strong(expected, SlotState::kClosing, kSeqCst)) {
        close_connection(slot, CloseReason::kShutdown);
        remove_core = make_empty_locked(slot);
      }
    } else {
      dispatch_locked();
    }
  }
  if (remove_core) delete this;
}

void PoolCore::close_connection(Slot* slot, CloseReason reason) noexcept {
  const nanoseconds age(now_ns() - slot->created_ns);
  const std::uint64_t id = slot->connection_id.load(kRelaxed);
  slot->conn.close();
  closed_by_[static_cast<std::size_t>(reason)].fetch_add(1, kRelaxed);
  notify(&ObserverList::close, [&](PoolObserver& o) { o.on_close({config_.name, id, reason, age}); });
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

}  // namespace poolscope::detail
