// TierCore: everything a RedisTier is, shared with the bindings of the caches
// attached to it, which keep it alive (a RedisTier may go first: shutdown()
// then stops every call, and the caches go on without Redis).
//
// Its parts: the connection set and the breaker every call goes through
// (call()), the bindings by cache name, the invalidations waiting for Redis
// (tier_invalidation.cc), the subscriber thread, and the counters.
//
// The class is thread-safe. No concurrent call to any API of this type causes
// a data race.

#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "breaker.h"
#include "connection_set.h"
#include "poolscope/base/mutex.h"
#include "poolscope/cache/redis/detail/binding.h"
#include "poolscope/cache/redis/redis_tier.h"
#include "poolscope/cache/redis/redis_url.h"

namespace poolscope::cache::detail {

class Subscriber;

// Relaxed atomics: counts, read as a snapshot that need not be exact
// across fields.
struct TierCounters {
  std::atomic<std::uint64_t> calls{0}, errors{0}, timeouts{0}, skipped{0};
  std::atomic<std::uint64_t> breaker_opened{0}, breaker_closed{0};
  std::atomic<std::uint64_t> subscriber_connects{0}, subscriber_flushes{0};
  std::atomic<std::uint64_t> published{0}, received{0};
  std::atomic<bool> subscriber_connected{false};
  // Latency: counts per RedisLatencyHistogram bucket, total nanoseconds.
  std::atomic<std::uint64_t> latency[RedisLatencyHistogram::kBoundsSeconds.size() + 1]{};
  std::atomic<std::uint64_t> latency_count{0}, latency_ns{0};
};

class BindingState : public std::enable_shared_from_this<BindingState> {
 public:
  BindingState(std::shared_ptr<TierCore> core, std::string name, std::chrono::milliseconds ttl,
               BindingHooks hooks);

  // Constant after construction.
  const std::shared_ptr<TierCore> core;
  const std::string name;
  const std::string key_prefix;      // {prefix}:{name}:
  const std::string lock_prefix;     // {prefix}:{name}#lock:
  const std::string gen_key;         // {prefix}:{name}#gen
  const std::string key_gen_prefix;  // {prefix}:{name}#gen:
  const std::chrono::milliseconds ttl;
  const BindingHooks hooks;

  // Relaxed counters (see RedisCacheTierStats).
  std::atomic<std::uint64_t> redis_hits{0}, redis_misses{0}, decode_failures{0};
  std::atomic<std::uint64_t> loads{0}, fallback_loads{0}, stores{0}, sessions_avoided{0};
  std::atomic<std::uint64_t> lock_acquired{0}, lock_waited{0}, lock_expired{0};
  std::atomic<std::uint64_t> published{0}, received{0};
  // Invalidations of this cache not yet in Redis: while any are, reads skip
  // Redis (it may hold what they invalidated). Changed under the core's
  // pending lock; read without it (acquire).
  std::atomic<std::size_t> pending{0};
  // The subscriber was not subscribed at some moment while this binding
  // existed: it may have missed invalidations, so its next subscription
  // flushes the cache. (Set at bind when not subscribed, and for every
  // binding when the link is lost.)
  std::atomic<bool> may_have_missed{false};
  // False once unbound: loads that still come (through a RedisBinding's
  // loader() callable) go straight to the loader.
  std::atomic<bool> bound{true};
};

class TierCore {
 public:
  // Throws std::invalid_argument, BadUrl.
  explicit TierCore(RedisTierConfig config);
  ~TierCore();
  TierCore(const TierCore&) = delete;
  TierCore& operator=(const TierCore&) = delete;

  // Starts the subscriber and waits (at most connect_timeout + timeout) for
  // its first attempt, so that caches attached next start subscribed;
  // shutdown() stops it and every later call.
  void start();
  void shutdown() noexcept;

  // One round trip, through the breaker and a free connection, bounded by
  // config().timeout from now. Counts it. Never throws but std::bad_alloc.
  // eager: may probe before the breaker's back-off ends (see Breaker).
  CallResult call(std::span<const std::string_view> argv, bool eager = false);

  bool closed() const noexcept { return closed_.load(std::memory_order_acquire); }
  const RedisTierConfig& config() const noexcept { return config_; }
  const RedisUrl& url() const noexcept { return url_; }
  const std::string& channel() const noexcept { return channel_; }
  // A lock token no other load in any process has: this process's random
  // origin and a counter.
  std::string new_token();

  // Bindings (a cache name at most once).
  std::shared_ptr<BindingState> add_binding(const std::shared_ptr<TierCore>& self,
                                            const std::string& name, std::chrono::milliseconds ttl,
                                            BindingHooks hooks);
  void remove_binding(const BindingState& binding) noexcept;

  // Invalidations (tier_invalidation.cc). invalidate(): Redis, then every
  // process; queued for later when Redis cannot be reached now.
  void invalidate(BindingState& binding, WireKind kind, std::string_view text) noexcept;
  // A load lock this process may hold without knowing it (a call that took
  // it timed out, or the store or release that frees it failed): released
  // (compare-and-delete) with the queued invalidations, so that no process
  // waits lock_ttl for it after an outage. Bounded; past the bound the
  // oldest are left to expire.
  void release_later(std::string lock_key, std::string token) noexcept;
  // Sends the queued invalidations while Redis takes them; the first call
  // probes Redis even while the breaker backs off, so that they go out
  // within a tick of Redis answering again.
  void replay_pending() noexcept;
  bool has_pending() const noexcept {
    return pending_count_.load(std::memory_order_acquire) != 0 ||
           releases_count_.load(std::memory_order_acquire) != 0;
  }

  // Whether reads may take values from Redis now: not while this process
  // cannot hear invalidations, nor for settle() after it can again, while
  // other processes send what they queued in the outage (until then Redis
  // may still hold what those invalidate).
  bool redis_readable() const noexcept {
    return SteadyClock::now().time_since_epoch().count() >=
           redis_readable_from_.load(std::memory_order_acquire);
  }
  std::chrono::milliseconds settle() const noexcept;

  // From the subscriber thread.
  void on_attempt(const CallResult& result) noexcept;
  void on_tick() noexcept;
  void on_message(std::string_view payload) noexcept;
  void on_subscribed() noexcept;
  void on_subscriber_lost(const std::string& error, bool was_connected) noexcept;

  RedisTierStats stats() const;
  RedisCacheTierStats binding_stats(const BindingState& binding) const;
  TierCounters& counters() noexcept { return counters_; }

  // Logs at level (spdlog's level_enum) without throwing.
  void log(int level, const std::string& message) noexcept;

 private:
  struct Pending {
    std::shared_ptr<BindingState> binding;
    WireKind kind = WireKind::kAll;
    std::string text;
    std::uint64_t sequence = 0;  // tells a replayed entry from its replacement
  };

  // Redis and the broadcast for one invalidation; false when a call failed.
  bool send(BindingState& binding, WireKind kind, std::string_view text, bool eager = false);
  // Empties every bound cache here (their entries may miss invalidations).
  void drop_local() noexcept;
  bool delete_matching(const std::string& match);
  std::string message(const BindingState& binding, WireKind kind, std::string_view text) const;
  void queue(BindingState& binding, WireKind kind, std::string_view text);
  // A call (or a subscriber attempt) in calls, errors and timeouts.
  void count(const CallResult& result) noexcept;
  void record(const CallResult& result, std::chrono::nanoseconds took) noexcept;
  void on_breaker(const Breaker::Change& change) noexcept;

  // Constant after construction.
  const RedisTierConfig config_;
  const RedisUrl url_;
  const std::string channel_;  // {prefix}#invalidations:{db}: channels span databases
  const std::string origin_;   // random, per process: skips our own broadcasts
  const std::shared_ptr<spdlog::logger> logger_;

  TierCounters counters_;
  std::atomic<std::uint64_t> next_token_{0};
  std::atomic<bool> closed_{false};
  std::atomic<bool> subscriber_lost_{false};  // an outage was logged: log the recovery
  // SteadyClock ticks from which reads may use Redis values (max: not now).
  std::atomic<SteadyClock::rep> redis_readable_from_{0};
  ConnectionSet connections_;
  Breaker breaker_;

  mutable poolscope::detail::Mutex bindings_mu_;
  std::map<std::string, std::shared_ptr<BindingState>, std::less<>> bindings_
      POOLSCOPE_GUARDED_BY(bindings_mu_);

  poolscope::detail::Mutex pending_mu_;  // replays run on the subscriber thread only
  std::deque<Pending> pending_ POOLSCOPE_GUARDED_BY(pending_mu_);
  std::uint64_t next_pending_ POOLSCOPE_GUARDED_BY(pending_mu_) = 0;
  // Times the queue was collapsed since it was last empty (logged once).
  std::uint64_t collapses_ POOLSCOPE_GUARDED_BY(pending_mu_) = 0;
  std::atomic<std::size_t> pending_count_{0};
  // Lock keys and tokens for release_later().
  std::deque<std::pair<std::string, std::string>> releases_ POOLSCOPE_GUARDED_BY(pending_mu_);
  std::atomic<std::size_t> releases_count_{0};
  // Sends releases_ while Redis takes them; false when a call failed.
  bool send_releases(bool eager);

  poolscope::detail::Mutex subscriber_mu_;
  std::unique_ptr<Subscriber> subscriber_ POOLSCOPE_GUARDED_BY(subscriber_mu_);

  poolscope::detail::Mutex first_mu_;
  poolscope::detail::CondVar first_cv_;
  bool first_attempt_done_ POOLSCOPE_GUARDED_BY(first_mu_) = false;
  void first_attempt_done() noexcept;
};

// The Redis MATCH pattern for keys that start with literal and then match
// glob (a pattern of poolscope/cache/glob.h), or anything when there is none.
std::string redis_match(std::string_view literal, std::optional<std::string_view> glob);

}  // namespace poolscope::cache::detail
