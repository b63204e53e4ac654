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
// hash table, so writers on different keys rarely meet. A hit shares its
// shard's lock through a slot of its own CPU, so hits on one shard take no
// lock in common. What a hit still shares is the value it copies out: get()
// copies V, and copying a std::shared_ptr increments (and later decrements)
// a count that every reader of that entry writes. visit() reads the value in
// place, under the shared lock, and copies nothing. Store
// std::shared_ptr<const T> when copying T would allocate.
//
// Single flight: concurrent misses on one key run the loader once; the others
// wait for its result, or its exception, which is cached nowhere. An
// invalidation that covers a key while its load is running marks that load
// stale (its result goes to its waiters but not into the cache) and detaches
// it, so a caller arriving after the invalidation starts a fresh load: a
// writer that saves, then invalidates, then reads, sees its own write.
//
// Derived entries stay coherent by themselves: what a loader reads from
// poolscope caches on its thread is recorded, and the loaded entry is evicted
// when any entry it read is invalidated, erased or replaced (put, reload,
// refresh), here or through apply(); it also expires no later than they do
// (see detail/dependency.h). So an InstanceCache of accounts built from a
// SettingsCache drops an account when its settings are saved.
//
// Extension points for a shared second level and an invalidation bus (many
// processes): loaders compose (look in the second level, else the database),
// and add_invalidation_listener() / apply() carry invalidations between
// caches without changing callers.
//
// The class is thread-safe. No concurrent call to any API of this type causes
// a data race. Loaders run on the calling thread, outside the cache's locks;
// they may use other caches but must not re-enter this one for the same key.

#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "poolscope/base/lifeline.h"
#include "poolscope/base/mutex.h"
#include "poolscope/base/periodic_worker.h"
#include "poolscope/base/subscription.h"
#include "poolscope/cache/cache_stats.h"
#include "poolscope/cache/clock.h"
#include "poolscope/cache/detail/dependency.h"
#include "poolscope/cache/glob.h"
#include "poolscope/cache/hash.h"
#include "poolscope/cache/invalidation.h"
#include "poolscope/cache/sessions.h"
#include "poolscope/cache/size.h"
#include "poolscope/cache/ttl_cache_config.h"

namespace poolscope::cache {

template <class K, class V, class Hash = CacheHash<K>, class Eq = std::equal_to<>>
class TtlCache {
 public:
  using Listener = std::function<void(const Invalidation<K>&)>;

  explicit TtlCache(TtlCacheConfig config = {});
  ~TtlCache();
  TtlCache(const TtlCache&) = delete;
  TtlCache& operator=(const TtlCache&) = delete;

  // The cached value, or nullopt when absent or expired. Counts a hit or a miss.
  template <class Q = K>
  std::optional<V> get(const Q& key);

  // As get(), but calls f(const V&) on the cached value in place instead of
  // copying it; returns whether it did. f runs under the shard's lock: it
  // must be short and must not use this cache.
  template <class Q = K, class F>
  bool visit(const Q& key, F&& f);

  // Caches value for ttl (the cache's TTL if absent; zero: no expiry).
  // Throws std::invalid_argument for a negative ttl.
  void put(const K& key, V value, std::optional<std::chrono::milliseconds> ttl = std::nullopt);

  // The cached value; on a miss runs loader(key) once however many threads
  // miss together, caches its result (unless invalidated meanwhile) and
  // returns it. The loader's exception reaches every waiter; nothing is
  // cached. Throws std::invalid_argument for a negative ttl, before loading.
  template <class F>
  V get_or_load(const K& key, F&& loader,
                std::optional<std::chrono::milliseconds> ttl = std::nullopt);

  // As get_or_load(), but calls f(const V&) with the value instead of
  // returning a copy: on a hit in place, under the shard's lock (f must be
  // short and must not use this cache), otherwise on the loaded value.
  template <class F, class L>
  void visit_or_load(const K& key, L&& loader, F&& f,
                     std::optional<std::chrono::milliseconds> ttl = std::nullopt);

  // Runs loader(key) now, cached or not, and caches its result with what the
  // load cost (so later hits count the sessions they spare). A load of key
  // already running is superseded: its result still reaches its waiters but
  // not the cache. Callers missing meanwhile wait for this load. Counts a
  // load, not a miss. Throws what the loader throws (nothing cached).
  template <class F>
  V reload(const K& key, F&& loader, std::optional<std::chrono::milliseconds> ttl = std::nullopt);

  // Loads every key of keys that is neither cached nor being loaded by
  // another thread (those count as in_progress; this does not wait for
  // them). Neither hits nor misses are counted; failures are counted, not
  // thrown.
  template <class Range, class F>
  WarmResult warm(const Range& keys, F&& loader);

  // Reloads, in the background, entries that were read since they were
  // loaded and are older than refresh_after, so hot keys never expire into a
  // miss; a key whose load is already running is left to it. A failed
  // reload keeps the old value until its TTL. Call once: a second call
  // throws std::logic_error; a refresh_after not positive throws
  // std::invalid_argument.
  void enable_refresh(std::function<V(const K&)> loader, std::chrono::milliseconds refresh_after);

  // Removes key; returns whether it was cached.
  bool erase(const K& key);
  // Removes every entry whose key starts with prefix / matches the glob
  // pattern (see glob.h); returns how many. Keys are matched a few dozen at
  // a time under a shard's shared lock and removed under its exclusive lock,
  // so readers never wait for more than one such step.
  std::size_t invalidate_prefix(std::string_view prefix)
    requires StringKey<K>;
  std::size_t invalidate_glob(std::string_view pattern)
    requires StringKey<K>;
  // Removes every entry for which pred(const K&) holds; returns how many.
  // pred runs under a shard's shared lock: it must not use this cache.
  template <class Pred>
  std::size_t invalidate_if(Pred pred);
  // Removes everything.
  void clear();

  // Removes expired entries now (they also go when touched or evicted).
  std::size_t purge_expired();

  // Calls listener after every local invalidation (erase, prefix, glob,
  // if-by-key excepted, clear), outside the cache's locks, until the returned
  // Subscription ends (safe after the cache is gone). For an invalidation
  // bus. A listener that throws loses that one call.
  Subscription add_invalidation_listener(Listener listener);
  // Applies an invalidation from elsewhere: evicts what it covers, and the
  // entries of any cache built from those, without calling the listeners.
  void apply(const Invalidation<K>& invalidation);

  CacheStats stats() const;
  const std::string& name() const noexcept { return config_.name; }
  const TtlCacheConfig& config() const noexcept { return config_; }

  // For readers on other threads that may outlive this cache (a metrics
  // scrape): read only while a Guard from watch().lock() is true. The
  // destructor waits for such reads, then makes them fail.
  poolscope::detail::Lifeline::Watch watch() const { return lifeline_.watch(); }

 private:
  struct Node;
  struct Flight;
  struct Shard;
  struct DependentEntry;
  class LoadRecorder;
  template <class Q>
  struct Probe;
  using TimePoint = std::chrono::steady_clock::time_point;
  using Nanos = std::chrono::nanoseconds;

  // What a shared-lock lookup found.
  enum class Lookup { kHit, kAbsent, kExpired };
  // Why load() was called.
  enum class LoadMode {
    kGet,      // a miss: take the entry if it is there after all, else join or start a load
    kWarm,     // load unless cached or being loaded; count no hit or miss
    kRefresh,  // load again unless a load is running; the old entry serves meanwhile
    kReload,   // load again, superseding a running load
  };
  // What load() did.
  enum class LoadOutcome { kLoaded, kHit, kJoined, kPresent, kInProgress };
  // What scan() walks: a shard's entries, or the keys its dependents read.
  enum class ScanPart { kEntries, kDependents };
  // One call of load(): the key, its TTL (zero: none), and the load running
  // on this thread that reads it, if any.
  struct LoadRequest {
    const Probe<K>& probe;
    Nanos ttl;
    LoadMode mode;
    detail::LoadFrame* reader;
  };

  // The key's hash as the shards use it: the low bits pick the shard, the
  // top bits the bucket (computed once per call).
  template <class Q>
  std::size_t hash_of(const Q& key) const noexcept(noexcept(Hash{}(key)));
  Shard& shard_of(std::size_t hash) const noexcept { return shards_[hash & shard_mask_]; }
  TimePoint now() const noexcept { return coarse_ ? coarse_now() : clock_->now(); }
  // ttl, or the cache's; throws std::invalid_argument when negative.
  Nanos checked_ttl(std::optional<std::chrono::milliseconds> ttl) const;
  // now + ttl, saturating; zero ttl: never.
  static TimePoint expiry(TimePoint now, Nanos ttl) noexcept;
  // A load that read n (reader, if any) makes an entry that expires with it.
  static void limit_by(detail::LoadFrame* reader, const Node& n, TimePoint now) noexcept;
  // The hit path, under the shard's shared lock: on a live entry counts a
  // hit and calls f(value). An absent key counts a miss if kCountAbsent.
  // Inline in its callers (a call here costs a sixth of a hit).
  template <bool kCountAbsent, class Q, class F>
  [[gnu::always_inline]] inline Lookup try_hit(Shard& s, const Probe<Q>& probe, F& f);
  // visit() past the shared lock: under the exclusive lock, recording the
  // read for reader (the load running on this thread), if any.
  template <class Q, class F>
  [[gnu::noinline]] bool visit_exclusive(Shard& s, const Probe<Q>& probe, F& f,
                                         detail::LoadFrame* reader);
  // Everything but a shared-lock hit. Sets out to the value for kLoaded,
  // kHit and kJoined. Rethrows the loader's (or the joined load's) error.
  template <class F>
  LoadOutcome load(Shard& s, const LoadRequest& r, F& loader, std::optional<V>& out);
  // load()'s first step, under the exclusive lock: an answer without
  // loading (outcome, out), or the flight this thread must now run.
  std::shared_ptr<Flight> begin_load(Shard& s, const LoadRequest& r, std::optional<V>& out,
                                     LoadOutcome& outcome);
  // load()'s last step: caches the result (unless stale), ends the flight.
  void finish_load(Shard& s, const LoadRequest& r, Flight& flight, LoadRecorder& recorder,
                   std::optional<V>& out, std::exception_ptr& error, Nanos took);
  // A Dependent of this cache fired: evicts key's entry or keeps its load
  // out, if they are still the ones of that generation.
  void evict_dependent(const K& key, std::size_t hash, std::uint64_t generation) noexcept;
  // Invalidations without the listener: the public calls notify after
  // them; apply() does not.
  bool erase_local(const K& key);
  std::size_t prefix_local(std::string_view prefix)
    requires StringKey<K>;
  std::size_t glob_local(std::string_view pattern)
    requires StringKey<K>;
  void clear_local();
  template <class Pred>
  std::size_t invalidate_matching(Pred& pred);
  // The keys of s's loads, entries and dependents for which pred holds.
  template <class Pred>
  std::vector<K> matching_keys(Shard& s, Pred& pred);
  // Invalidates keys in s; returns how many entries went.
  std::size_t remove_keys(Shard& s, const std::vector<K>& keys);
  // Calls f(const K&, const Node*) for what part of s holds, a chunk of
  // buckets per step under the shared lock (f must not use this cache).
  template <class F>
  void scan(Shard& s, ScanPart part, F&& f);
  void notify(const Invalidation<K>& invalidation);
  void refresh_due(std::stop_token stop, const std::function<V(const K&)>& loader,
                   Nanos refresh_after);

  // Constant after construction.
  const TtlCacheConfig config_;
  const std::shared_ptr<CacheClock> clock_;
  const bool coarse_;  // clock_ is the default: read it inline
  const Nanos ttl_;    // config_.ttl, saturated
  const int shard_bits_;
  const std::size_t shard_mask_;
  const std::unique_ptr<Shard[]> shards_;

  // The listeners, shared (weakly) with their Subscriptions.
  struct Listeners {
    poolscope::detail::Mutex mu;
    std::uint64_t next_id POOLSCOPE_GUARDED_BY(mu) = 1;
    std::vector<std::pair<std::uint64_t, std::shared_ptr<const Listener>>> list
        POOLSCOPE_GUARDED_BY(mu);
  };
  const std::shared_ptr<Listeners> listeners_ = std::make_shared<Listeners>();

  poolscope::detail::Mutex refresh_mu_;
  poolscope::detail::Lifeline lifeline_;
  // Last: stops before the shards go.
  std::unique_ptr<poolscope::detail::PeriodicWorker> refresher_ POOLSCOPE_GUARDED_BY(refresh_mu_);
};

}  // namespace poolscope::cache

// In this order: the shard types, then the member templates that use them.
// clang-format off
#include "poolscope/cache/detail/ttl_cache_node.h"
#include "poolscope/cache/detail/ttl_cache_shard.h"
#include "poolscope/cache/detail/ttl_cache_impl.h"
#include "poolscope/cache/detail/ttl_cache_load_impl.h"
#include "poolscope/cache/detail/ttl_cache_maintenance_impl.h"
#include "poolscope/cache/detail/ttl_cache_stats_impl.h"
// clang-format on
