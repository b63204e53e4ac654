// RedisTier: a Redis server as the shared second level of the caches of
// many processes (or machines) of one service. Link poolscope::cache_redis.
//
//   auto redis = std::make_shared<RedisTier>(RedisTierConfig{.url = "redis://:pw@cache:6379/0"});
//   SettingsCache settings(pool, {.name = "account_settings", .table = {...},
//                                 .shared_tier = redis});          // one field
//   RedisBinding configs_shared = redis->attach(configs);          // a TtlCache
//   Subscription evictions = redis->attach(accounts);              // an InstanceCache
//
// What it does for a cache:
//   - Keys are {prefix}:{cache name}:{key}; values carry a TTL (the cache's,
//     or the entry's).
//   - Reads: the local cache; on a miss, Redis (GET); on a miss there, the
//     load lock: `SET {prefix}:{cache}#lock:{key} <random token> NX PX
//     lock_ttl`, taken by one process, which re-checks, runs the loader,
//     stores the value and releases the lock (a compare-and-delete script).
//     The others poll for the value, for as long as the lock lives; if the
//     holder dies, its lock expires and one of them loads instead. Inside a
//     process, TtlCache's single flight already makes one thread ask.
//   - Invalidations (erase, prefix, glob, clear; SettingsCache::save()):
//     locally, then in Redis (UNLINK of the key; SCAN MATCH + UNLINK in
//     batches for patterns, never KEYS), then PUBLISHed; every process's
//     subscriber thread applies them to its local caches. A store racing
//     an invalidation is refused (a generation counter checked by the store
//     script), so Redis never keeps a value read before the invalidation.
//   - Faults: every call has a timeout; after failure_threshold failures in
//     a row the tier stops calling Redis for a back-off period (a circuit
//     breaker), then probes. Meanwhile reads go to the local cache and the
//     loader (the database): Redis down, slow or restarting costs latency,
//     never an error or a wrong value. Invalidations that cannot reach
//     Redis are kept (bounded) and sent within a tick of it answering
//     again. The subscriber PINGs to notice a dead link. While it has none,
//     no invalidation can reach this process: its bound caches keep no
//     entry longer than a tick (100 ms) and reads skip Redis; when it
//     subscribes again it flushes them, and reads skip Redis for settle
//     (connect_timeout + timeout + 200 ms), while other processes send what
//     they queued. State changes are logged once each (spdlog), never per
//     call.
//
// Every process of a service should use the same prefix and lock_ttl.
// Nothing here is a lock for correctness: a load that overruns lock_ttl may
// run twice, and every value is as fresh as the database was when loaded.
//
// The class is thread-safe. No concurrent call to any API of this type causes
// a data race. Caches attached to a tier may be destroyed before or after
// it; after it, they work on their own.

#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "poolscope/base/error.h"
#include "poolscope/base/lifeline.h"
#include "poolscope/base/subscription.h"
#include "poolscope/cache/instance_cache.h"
#include "poolscope/cache/redis/codec.h"
#include "poolscope/cache/redis/redis_binding.h"
#include "poolscope/cache/redis/redis_stats.h"
#include "poolscope/cache/settings_cache.h"
#include "poolscope/cache/ttl_cache.h"

namespace spdlog {
class logger;
}

namespace poolscope::cache {

// Redis could not be reached or refused us: from ping() only (the cache
// paths fall back instead of throwing). The message names the redacted URL.
class RedisError : public Error {
 public:
  using Error::Error;
};

struct RedisTierConfig {
  // redis://[[user]:password@]host[:port][/db] or unix:///path.sock (see redis_url.h).
  std::string url{};
  // First part of every key and of the invalidation channel, so that
  // services can share a Redis: 1 to 64 of A-Z a-z 0-9 _ . -.
  std::string prefix = "poolscope";
  // Connections for commands (1 to 64), plus one for the subscriber.
  std::size_t connections = 4;
  // Longest a connect (TCP or Unix, with AUTH and SELECT) may take.
  std::chrono::milliseconds connect_timeout{250};
  // Longest one call may take, waiting for a free connection and
  // (re)connecting included: what a slow or hung Redis costs a read at most.
  std::chrono::milliseconds timeout{100};
  // How long the load lock lives: longer than a load takes. Waiters wait
  // at most about this long for another process's value.
  std::chrono::milliseconds lock_ttl{5000};
  // Waiters look for the value this often at most (from 2 ms, doubling).
  std::chrono::milliseconds lock_poll{20};
  // Failures in a row (timeouts, refused or broken connections) that open
  // the breaker, and its first and longest back-off.
  std::size_t failure_threshold = 3;
  std::chrono::milliseconds backoff{1000};
  std::chrono::milliseconds max_backoff{30'000};
  // The subscriber PINGs this often; no PONG within `timeout` is a dead
  // link. A process that loses the link stops trusting its local entries
  // within ping_interval + timeout of the last PONG, so this bounds how
  // long it may serve a value another process changed meanwhile.
  std::chrono::milliseconds ping_interval{250};
  // Invalidations kept while Redis is unreachable (at least 1); past it, a
  // cache's are replaced by one clear of that cache.
  std::size_t max_pending_invalidations = 1024;
  // Where state changes are logged. Null: the spdlog logger "poolscope",
  // created on stderr if the application has not registered one.
  std::shared_ptr<spdlog::logger> logger{};

  // Throws std::invalid_argument naming the first invalid field and its value.
  void validate() const;
};

class RedisTier final : public SettingsTier, public RedisTierStatsSource {
 public:
  // Validates config and parses its URL (throws std::invalid_argument,
  // poolscope::BadUrl), and starts the subscriber thread, waiting for its
  // first attempt to subscribe (at most connect_timeout + timeout) so that
  // caches attached next start coherent. A Redis that is down at start is
  // no error: the tier connects when it can.
  explicit RedisTier(RedisTierConfig config);
  // Stops the subscriber and closes every connection; attached caches go
  // on without Redis.
  ~RedisTier() override;
  RedisTier(const RedisTier&) = delete;
  RedisTier& operator=(const RedisTier&) = delete;

  // Puts Redis under cache, with codec for its values and keys (built in for
  // strings, integers and floating point). Throws std::invalid_argument when
  // the cache's name has a ':' or another cache of that name is attached.
  template <class K, class V, class H, class E>
  RedisBinding<K, V, H, E> attach(TtlCache<K, V, H, E>& cache, RedisCodec<V> codec,
                                  RedisKeyCodec<K> keys, RedisCacheOptions options = {}) {
    return RedisBinding<K, V, H, E>(core_, cache, std::move(codec), std::move(keys), options);
  }
  template <class K, class V, class H, class E>
  RedisBinding<K, V, H, E> attach(TtlCache<K, V, H, E>& cache, RedisCodec<V> codec,
                                  RedisCacheOptions options = {})
    requires BuiltinRedisText<K>
  {
    return attach(cache, std::move(codec), builtin_key_codec<K>(), options);
  }
  template <class K, class V, class H, class E>
  RedisBinding<K, V, H, E> attach(TtlCache<K, V, H, E>& cache, RedisCacheOptions options = {})
    requires BuiltinRedisText<K> && BuiltinRedisText<V>
  {
    return attach(cache, builtin_codec<V>(), builtin_key_codec<K>(), options);
  }

  // Invalidations only (values stay local): the cache's erase, prefix, glob
  // and clear reach every process, and theirs reach it, until the
  // Subscription ends. Throws as attach() does.
  template <class K, class V, class H, class E>
  Subscription attach_invalidations(TtlCache<K, V, H, E>& cache, RedisKeyCodec<K> keys) {
    return detail::wire(core_, cache, keys, std::chrono::milliseconds(0)).second;
  }
  template <class K, class V, class H, class E>
  Subscription attach_invalidations(TtlCache<K, V, H, E>& cache)
    requires BuiltinRedisText<K>
  {
    return attach_invalidations(cache, builtin_key_codec<K>());
  }
  // An InstanceCache's evictions (evict, clear) reach every process. (Its
  // instances are evicted when the settings they were built from change
  // only if it follows that SettingsCache, as the cache track arranges.)
  template <class Id, class T>
  Subscription attach(InstanceCache<Id, T>& instances)
    requires BuiltinRedisText<Id>
  {
    return attach_invalidations(instances.cache());
  }

  // SettingsTier, for SettingsCacheConfig::shared_tier: the entity's
  // settings are shared with the built-in settings codec.
  std::unique_ptr<Link> link(SettingsCache& cache) override;

  // A round trip now (a connection of the set, PING), for a start-up
  // check: throws RedisError saying what failed (refused, timed out,
  // authentication failed, ...) and naming the redacted URL. The caches
  // never need it.
  void ping();

  RedisTierStats stats() const override;
  poolscope::detail::Lifeline::Watch watch() const override { return lifeline_.watch(); }

  const std::string& url() const noexcept;  // redacted
  const RedisTierConfig& config() const noexcept;

 private:
  poolscope::detail::Lifeline lifeline_;
  std::shared_ptr<detail::TierCore> core_;
};

}  // namespace poolscope::cache
