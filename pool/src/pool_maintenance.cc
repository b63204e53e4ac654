// PoolCore's work off the checkout path: construction and start, the
// housekeeper (expired and idle connections, min_idle), statistics and lease
// snapshots, the timeout message, and shutdown.

#include <algorithm>
#include <iomanip>
#include <map>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include "clock.h"
#include "pool_core.h"
#include "poolscope/base/site.h"
#include "poolscope/pool/errors.h"

namespace poolscope::detail {

using std::chrono::nanoseconds;

std::uint64_t next_pool_id() noexcept;

namespace {

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

std::int64_t saturating_count(std::chrono::milliseconds d) noexcept {
  constexpr auto kLimit = std::chrono::duration_cast<std::chrono::milliseconds>(nanoseconds::max());
  return d >= kLimit ? INT64_MAX : nanoseconds(d).count();
}

// How often the housekeeper runs: housekeeping_interval, or more often when
// max_lifetime or idle_timeout are shorter.
std::chrono::nanoseconds housekeeping_period(const PoolConfig& config, std::int64_t lifetime_ns,
                                             std::int64_t idle_timeout_ns) {
  nanoseconds period = nanoseconds(saturating_count(config.housekeeping_interval));
  for (std::int64_t limit : {lifetime_ns, idle_timeout_ns}) {
    if (limit > 0) period = std::min(period, nanoseconds(limit / 2));
  }
  return std::max(period, nanoseconds(std::chrono::milliseconds(10)));
}

}  // namespace

PoolCore::PoolCore(PoolConfig config, ConnectionUrl url)
    : config_(std::move(config)),
      url_(std::move(url)),
      driver_(driver_for(url_.backend())),
      connect_string_(effective_connect_string(url_, config_)),
      id_(next_pool_id()),
      max_(config_.pool_size + config_.max_overflow),
      in_memory_(url_.backend() == Backend::kSqlite && url_.sqlite_in_memory()),
      checkout_timeout_(saturating_count(config_.checkout_timeout)),
      lifetime_ns_(in_memory_ ? 0 : saturating_count(config_.max_lifetime)),
      idle_timeout_ns_(in_memory_ ? 0 : saturating_count(config_.idle_timeout)),
      validation_interval_ns_(saturating_count(config_.validation_interval)),
      slots_(new Slot[max_]),
      observers_(std::make_shared<ObserverRegistry>()) {
  for (std::size_t i = 0; i < max_; ++i) slots_[i].index = static_cast<std::uint32_t>(i);
}

PoolCore::~PoolCore() = default;

void PoolCore::start() {
  // On this thread: a constructor that promises min_idle open connections
  // (or a ConnectError) has to wait for them.
  for (std::size_t i = 0; i < config_.min_idle; ++i) {
    Slot* slot = nullptr;
    {
      MutexLock lock(mu_);
      slot = reserve_empty_locked();
    }
    if (slot == nullptr) break;
    std::string error;
    if (!open_into(slot, source_location(), 1, &error)) {
      give_back_empty(slot);
      throw ConnectError("pool '" + config_.name + "' cannot connect to " + url_.redacted() + ": " +
                         error);
    }
    MutexLock lock(mu_);
    slot->state.store(SlotState::kIdle, kSeqCst);
  }
  housekeeper_.emplace(housekeeping_period(config_, lifetime_ns_, idle_timeout_ns_),
                       [this](std::stop_token stop) { housekeep(stop); });
}

// Runs on the housekeeper thread only, which shutdown() stops and joins
// before it closes the pool: the pool is never closed (nor the core
// orphaned) while this runs, so giving slots back cannot delete the core.
// It never opens a connection itself (a connector does), so stopping it
// never waits for a server.
void PoolCore::housekeep(std::stop_token stop) noexcept {
  const std::int64_t now = now_ns();
  std::size_t idle = 0;
  for (std::size_t i = 0; i < max_; ++i) {
    if (slots_[i].state.load(kRelaxed) == SlotState::kIdle) ++idle;
  }
  for (std::size_t i = 0; i < max_ && !stop.stop_requested(); ++i) {
    Slot* slot = &slots_[i];
    if (slot->state.load(std::memory_order_acquire) != SlotState::kIdle) continue;
    std::optional<CloseReason> reason;
    const std::size_t open = open_count_.load(kRelaxed);
    if (now >= slot->expires_ns.load(kRelaxed)) {
      reason = CloseReason::kMaxLifetime;
    } else if (idle_timeout_ns_ > 0 && open > config_.min_idle &&
               now - slot->last_used_ns.load(kRelaxed) > idle_timeout_ns_) {
      reason = CloseReason::kIdleTimeout;
    } else if (open > config_.pool_size && idle > config_.pool_size) {
      reason = CloseReason::kOverflow;  // idle overflow left by a racing return
    }
    if (!reason) continue;
    SlotState expected = SlotState::kIdle;
    if (!slot->state.compare_exchange_strong(expected, SlotState::kClosing,
                                             std::memory_order_acquire, kRelaxed)) {
      continue;
    }
    --idle;
    discard(slot, *reason);
  }
  // Keep min_idle connections open, through connectors.
  MutexLock lock(mu_);
  while (!stop.stop_requested() && open_count_.load(kRelaxed) < config_.min_idle &&
         connecting_ < kMaxConnectors) {
    Slot* slot = reserve_empty_locked();
    if (slot == nullptr) break;
    start_connect_locked(slot, nullptr, source_location());
  }
}

PoolStats PoolCore::stats() const {
  PoolStats s;
  s.name = config_.name;
  s.url = url_.redacted();
  s.backend = std::string(to_string(url_.backend()));
  s.pool_size = config_.pool_size;
  s.max_overflow = config_.max_overflow;
  s.max_connections = max_;
  s.min_idle = config_.min_idle;
  for (std::size_t i = 0; i < max_; ++i) {
    const Slot& slot = slots_[i];
    switch (slot.state.load(kRelaxed)) {
      case SlotState::kIdle:
        ++s.idle;
        break;
      case SlotState::kInUse:
        ++s.active;
        break;
      default:
        break;
    }
    s.acquires += slot.checkout_seq.load(kRelaxed) / 2;
    s.reuses += slot.reuses.load(kRelaxed);
  }
  s.open = open_count_.load(kRelaxed);
  s.pending = waiters_.load(kRelaxed);
  if (const std::int64_t since = head_since_ns_.load(kRelaxed); since != 0 && s.pending != 0) {
    s.oldest_wait = nanoseconds(std::max<std::int64_t>(0, steady_ns() - since));
  }
  s.overflow_in_use = s.open > config_.pool_size ? s.open - config_.pool_size : 0;
  s.waits = waits_.load(kRelaxed);
  s.total_wait = nanoseconds(wait_ns_.load(kRelaxed));
  s.timeouts = timeouts_.load(kRelaxed);
  s.connections_opened = opened_.load(kRelaxed);
  s.connect_failures = connect_failures_.load(kRelaxed);
  s.rollbacks_on_return = rollbacks_.load(kRelaxed);
  s.statements_prepared = statements_.prepared.load(kRelaxed);
  s.statement_cache_hits = statements_.hits.load(kRelaxed);
  for (std::size_t r = 0; r < kCloseReasonCount; ++r) s.closed[r] = closed_by_[r].load(kRelaxed);
  return s;
}

std::vector<LeaseInfo> PoolCore::active_leases() const {
  std::vector<LeaseInfo> leases;
  const std::int64_t now = now_ns();
  for (std::size_t i = 0; i < max_; ++i) {
    const Slot& slot = slots_[i];
    if (slot.state.load(std::memory_order_acquire) != SlotState::kInUse) continue;
    LeaseInfo info;
    std::int64_t checked_out = 0;
    for (int attempt = 0;; ++attempt) {
      const std::uint64_t before = slot.checkout_seq.load(std::memory_order_acquire);
      checked_out = slot.checkout_ns.load(kRelaxed);
      info.site = slot.site.load(kRelaxed);
      info.thread = slot.thread.load(kRelaxed);
      info.connection_id = slot.connection_id.load(kRelaxed);
      std::atomic_thread_fence(std::memory_order_acquire);
      if ((before & 1) == 0 && before == slot.checkout_seq.load(kRelaxed)) {
        info.checkout = before / 2;
        break;
      }
      if (attempt > 100) std::this_thread::yield();
    }
    if (checked_out == 0) continue;  // claimed, record not yet written
    info.slot = slot.index;
    info.held = nanoseconds(now - checked_out);
    leases.push_back(info);
  }
  std::sort(leases.begin(), leases.end(),
            [](const LeaseInfo& a, const LeaseInfo& b) { return a.held > b.held; });
  return leases;
}

void PoolCore::shutdown() noexcept {
  lifeline_.end();       // PoolView reads finish now; later ones see a closed pool
  housekeeper_.reset();  // never blocked on a server: it opens no connections itself

  std::vector<Slot*> idle;
  idle.reserve(max_);
  std::vector<LeaseInfo> leases;
  {
    MutexLock lock(mu_);
    closed_.store(true, kSeqCst);
    for (Waiter* w = head_; w != nullptr; w = w->next) w->cv.notify_one();
    connector_wake_.notify_all();  // connectors in back-off give up now
    while (slow_threads_ > 0) quiescent_.wait(mu_);

    // Every slot not empty now is owned by someone who will empty it once
    // the core is orphaned, decrementing outstanding_: this thread for the
    // idle ones, a lease, a connector or a close under way for the others.
    for (std::size_t i = 0; i < max_; ++i) {
      Slot* slot = &slots_[i];
      SlotState expected = SlotState::kIdle;
      if (slot->state.compare_exchange_strong(expected, SlotState::kClosing, kSeqCst)) {
        idle.push_back(slot);
        ++outstanding_;
      } else if (expected != SlotState::kEmpty) {
        ++outstanding_;
      }
    }
    // One extra count keeps the core alive to the end of this function; a
    // lease returning meanwhile cannot delete it.
    ++outstanding_;
    orphaned_ = true;
    leases = active_leases();
  }
  // Outside the lock, as observer.h promises on_close.
  for (Slot* slot : idle) discard(slot, CloseReason::kShutdown);
  notify(&ObserverRegistry::List::shutdown, &PoolObserver::on_shutdown, [&] {
    return ShutdownEvent{config_.name, leases};
  });
  // A return that published kIdle before the scan may still be reading the
  // pool (slot.h); it needs mu_ to finish, so wait outside it.
  for (std::size_t i = 0; i < max_; ++i) {
    while (slots_[i].releasing.load(std::memory_order_acquire)) std::this_thread::yield();
  }
  bool remove_core = false;
  {
    MutexLock lock(mu_);
    remove_core = --outstanding_ == 0;
  }
  if (remove_core) delete this;
}

}  // namespace poolscope::detail
