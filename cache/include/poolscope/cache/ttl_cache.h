// TtlCache<K, V>: an in-process cache with a TTL per cache and per entry, a
// size bound with CLOCK (second-chance) eviction, prefix and glob
// invalidation, warm-up, optional background refresh and single-flight
// loading.
//
//   TtlCache<std::string, Config> configs({.name = "config", .ttl = 5min});
//   Config c = configs.get_or_load("pair:ETH/USDT", [&](const std::string& key) {
//     Lease sql = pool.acquire();   // runs once, however many threads miss at once
//     return load_config(*sql, key);
//   });
//   configs.invalidate_glob("pair:*");
//
// The cache is split into shards, each with its own lock, eviction list and
// map, so writers on different keys rarely meet; a hit shares its shard's
// lock through a slot of its own CPU, so readers do not slow each other
// down at all. A hit copies V and nothing else: store
// std::shared_ptr<const T> when copying T would allocate.
//
// Single flight: concurrent misses on one key run the loader once; the others
// wait for its result, or its exception, which is cached nowhere. An
// invalidation that covers a key while its load is running marks that load
// stale (its result goes to its waiters but not into the cache) and detaches
// it, so a caller arriving after the invalidation starts a fresh load: a
// writer that saves, then invalidates, then reads, sees its own write.
//
// Extension points for a shared second level and an invalidation bus (many
// processes): loaders compose (look in the second level, else the database),
// and set_invalidation_listener() / apply() carry invalidations between
// caches without changing callers.
//
// The class is thread-safe. No concurrent call to any API of this type causes
// a data race. Loaders run on the calling thread, outside the cache's locks;
// they may use other caches but must not re-enter this one for the same key.

#pragma once

#include <chrono>
#include <concepts>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "poolscope/cache/cache_stats.h"
#include "poolscope/cache/clock.h"
#include "poolscope/cache/glob.h"
#include "poolscope/cache/hash.h"
#include "poolscope/cache/sessions.h"
#include "poolscope/cache/size.h"
#include "poolscope/pool/mutex.h"

namespace poolscope::cache {

struct TtlCacheConfig {
  // Label in stats and metrics.
  std::string name = "cache";
  // How long an entry lives unless put() or get_or_load() says otherwise.
  // Zero: entries never expire.
  std::chrono::milliseconds ttl{5 * 60'000};
  // Entries kept at most; past it, entries not read since they were last
  // passed over go first (CLOCK, an approximation of LRU). At least 1.
  std::size_t max_entries = 10'000;
  // Independent parts; a power of two from 1 to 1024.
  std::size_t shards = 16;
  // Null: default_clock().
  std::shared_ptr<CacheClock> clock;

  // Throws std::invalid_argument naming the first invalid field and its value.
  void validate() const;
};

// Keys the string-only operations (prefix and glob invalidation) accept.
template <class K>
concept StringKey = std::convertible_to<const K&, std::string_view>;

// Hashing that lets a std::string-keyed cache be searched with a
// string_view, with the fast hash of hash.h.
template <class K>
struct CacheHash : std::hash<K> {};
template <>
struct CacheHash<std::string> {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return hash_bytes(s); }
};

// One invalidation, as a listener sees it and apply() replays it.
template <class K>
struct Invalidation {
  enum class Kind { kKey, kPrefix, kGlob, kAll };
  Kind kind = Kind::kAll;
  std::optional<K> key;  // kKey
  std::string pattern;   // kPrefix, kGlob
};

// What warm() did.
struct WarmResult {
  std::size_t loaded = 0;   // keys loaded now
  std::size_t present = 0;  // keys already cached
  std::size_t failed = 0;   // keys whose loader threw
};

template <class K, class V, class Hash = CacheHash<K>, class Eq = std::equal_to<>>
class TtlCache {
 public:
  using Clock = CacheClock;
  using Listener = std::function<void(const Invalidation<K>&)>;

  explicit TtlCache(TtlCacheConfig config = {});
  ~TtlCache();
  TtlCache(const TtlCache&) = delete;
  TtlCache& operator=(const TtlCache&) = delete;

  // The cached value, or nullopt when absent or expired. Counts a hit or a miss.
  template <class Q = K>
  std::optional<V> get(const Q& key);

  // Caches value for ttl (the cache's TTL if absent; zero: no expiry).
  void put(const K& key, V value, std::optional<std::chrono::milliseconds> ttl = std::nullopt);

  // The cached value; on a miss runs loader(key) once however many threads
  // miss together, caches its result (unless invalidated meanwhile) and
  // returns it. The loader's exception reaches every waiter; nothing is cached.
  template <class F>
  V get_or_load(const K& key, F&& loader, std::optional<std::chrono::milliseconds> ttl = std::nullopt);

  // Loads every key of keys not already cached. Failures are counted, not thrown.
  template <class Range, class F>
  WarmResult warm(const Range& keys, F&& loader);

  // Reloads, in the background, entries that were read since they were
  // loaded and are older than refresh_after, so hot keys never expire into a
  // miss. A failed reload keeps the old value until its TTL. Call once.
  void enable_refresh(std::function<V(const K&)> loader, std::chrono::milliseconds refresh_after);

  // Removes key; returns whether it was cached.
  bool erase(const K& key);
  // Removes every entry whose key starts with prefix / matches the glob
  // pattern (see glob.h); returns how many.
  std::size_t invalidate_prefix(std::string_view prefix)
    requires StringKey<K>;
  std::size_t invalidate_glob(std::string_view pattern)
    requires StringKey<K>;
  // Removes every entry for which pred(key) holds; returns how many.
  template <class Pred>
  std::size_t invalidate_if(Pred pred);
  // Removes everything.
  void clear();

  // Removes expired entries now (they also go when touched or evicted).
  std::size_t purge_expired();

  // Called after every local invalidation (erase, prefix, glob, if-by-key
  // excepted, clear), outside the cache's locks. For an invalidation bus.
  void set_invalidation_listener(Listener listener);
  // Applies an invalidation from elsewhere without calling the listener.
  void apply(const Invalidation<K>& invalidation);

  CacheStats stats() const;
  const std::string& name() const noexcept { return config_.name; }
  const TtlCacheConfig& config() const noexcept { return config_; }

 private:
  struct Node;
  struct Flight;
  struct Shard;
  struct MapKey;
  template <class Q>
  struct Probe;
  struct MapHash;
  struct MapEq;

  // A key's hash, computed once per call: it picks the shard and the bucket.
  template <class Q>
  static std::size_t hash_of(const Q& key) noexcept(noexcept(Hash{}(key))) {
    return Hash{}(key);
  }
  Shard& shard_of(std::size_t hash) const noexcept;
  std::chrono::steady_clock::time_point expiry(std::chrono::steady_clock::time_point now,
                                               std::optional<std::chrono::milliseconds> ttl) const;
  template <class F>
  V load(const K& key, std::size_t hash, F&& loader, std::optional<std::chrono::milliseconds> ttl,
         bool refresh);
  template <class Pred>
  std::size_t invalidate_matching(Pred pred, bool everything);
  void notify(const Invalidation<K>& invalidation);
  void refresh_loop(std::stop_token stop, std::function<V(const K&)> loader,
                    std::chrono::milliseconds refresh_after);

  // Constant after construction.
  const TtlCacheConfig config_;
  const std::shared_ptr<CacheClock> clock_;
  const std::size_t shard_mask_;
  const std::size_t shard_capacity_;
  const std::unique_ptr<Shard[]> shards_;

  poolscope::detail::Mutex listener_mu_;
  std::shared_ptr<const Listener> listener_ POOLSCOPE_GUARDED_BY(listener_mu_);

  std::jthread refresher_;  // last: stops before the shards go
};

}  // namespace poolscope::cache

#include "poolscope/cache/detail/ttl_cache_shard.h"
#include "poolscope/cache/detail/ttl_cache_impl.h"
#include "poolscope/cache/detail/ttl_cache_maintenance_impl.h"
