// TtlCache's implementation: lookups, puts and single-flight loads.
// Included by ttl_cache.h only; the data structures and their invariants
// are in ttl_cache_shard.h.

#pragma once

#include <algorithm>
#include <bit>
#include <mutex>

namespace poolscope::cache {

template <class K, class V, class Hash, class Eq>
TtlCache<K, V, Hash, Eq>::TtlCache(TtlCacheConfig config)
    : config_((config.validate(), std::move(config))),
      clock_(config_.clock != nullptr ? config_.clock : default_clock()),
      // No more shards than entries, so each can hold at least one.
      shard_mask_(std::min(config_.shards, std::bit_floor(config_.max_entries)) - 1),
      shard_capacity_(config_.max_entries / (shard_mask_ + 1)),
      shards_(new Shard[shard_mask_ + 1]) {
  const std::size_t extra = config_.max_entries % (shard_mask_ + 1);
  for (std::size_t i = 0; i <= shard_mask_; ++i) {
    shards_[i].capacity = shard_capacity_ + (i < extra ? 1 : 0);
  }
}

template <class K, class V, class Hash, class Eq>
TtlCache<K, V, Hash, Eq>::~TtlCache() = default;

template <class K, class V, class Hash, class Eq>
auto TtlCache<K, V, Hash, Eq>::shard_of(std::size_t hash) const noexcept -> Shard& {
  // The bucket uses the hash's low bits; the shard, remixed high bits.
  hash ^= hash >> 17;
  hash *= 0x9E3779B97F4A7C15ull;
  return shards_[(hash >> 32) & shard_mask_];
}

template <class K, class V, class Hash, class Eq>
std::chrono::steady_clock::time_point TtlCache<K, V, Hash, Eq>::expiry(
    std::chrono::steady_clock::time_point now, std::optional<std::chrono::milliseconds> ttl) const {
  const std::chrono::milliseconds d = ttl.value_or(config_.ttl);
  if (d.count() < 0) throw std::invalid_argument("TtlCache: a TTL must not be negative");
  return d.count() == 0 ? std::chrono::steady_clock::time_point::max() : now + d;
}

template <class K, class V, class Hash, class Eq>
template <class Q>
std::optional<V> TtlCache<K, V, Hash, Eq>::get(const Q& key) {
  const Probe<Q> probe{key, hash_of(key)};
  Shard& s = shard_of(probe.hash);
  const auto now = clock_->now();
  {
    typename Shard::ReaderLock lock(s.mu);
    detail::ReaderCounts& mine = lock.local();
    const auto it = s.map.find(probe);
    if (it == s.map.end()) {
      ++mine.misses;
      return std::nullopt;
    }
    if (it->second.expires > now) return Shard::hit(it->second, mine.hits, mine.sessions_avoided);
  }
  // Expired: dropping it changes the map, which takes the writer's lock.
  typename Shard::WriterLock lock(s.mu);
  if (Node* n = s.find_live(probe, now)) return s.hit(*n);  // put again meanwhile
  ++s.counts.misses;
  return std::nullopt;
}

template <class K, class V, class Hash, class Eq>
void TtlCache<K, V, Hash, Eq>::put(const K& key, V value, std::optional<std::chrono::milliseconds> ttl) {
  const Probe<K> probe{key, hash_of(key)};
  Shard& s = shard_of(probe.hash);
  const auto now = clock_->now();
  const auto expires = expiry(now, ttl);
  typename Shard::WriterLock lock(s.mu);
  s.insert(probe, value, expires, now, 0);
  // A running load would overwrite this newer value: make it stale.
  if (auto it = s.flights.find(key); it != s.flights.end()) {
    it->second->stale = true;
    s.flights.erase(it);
  }
}

template <class K, class V, class Hash, class Eq>
template <class F>
V TtlCache<K, V, Hash, Eq>::get_or_load(const K& key, F&& loader,
                                        std::optional<std::chrono::milliseconds> ttl) {
  return load(key, hash_of(key), std::forward<F>(loader), ttl, /*refresh=*/false);
}

template <class K, class V, class Hash, class Eq>
template <class F>
V TtlCache<K, V, Hash, Eq>::load(const K& key, std::size_t hash, F&& loader,
                                 std::optional<std::chrono::milliseconds> ttl, bool refresh) {
  const Probe<K> probe{key, hash};
  Shard& s = shard_of(hash);
  if (!refresh) {
    // The common case, a hit, shares the lock; a miss goes on under the writer's.
    typename Shard::ReaderLock lock(s.mu);
    detail::ReaderCounts& mine = lock.local();
    if (const auto it = s.map.find(probe); it != s.map.end() && it->second.expires > clock_->now()) {
      return Shard::hit(it->second, mine.hits, mine.sessions_avoided);
    }
  }
  std::shared_ptr<Flight> flight;
  {
    std::unique_lock lock(s.mu);
    if (!refresh) {
      if (Node* n = s.find_live(probe, clock_->now())) return s.hit(*n);
      ++s.counts.misses;
    }
    if (auto it = s.flights.find(key); it != s.flights.end()) {
      // Someone is loading this key: wait for that result instead.
      flight = it->second;
      flight->done_cv.wait(lock, [&] { return flight->done; });
      if (flight->error) std::rethrow_exception(flight->error);
      s.counts.sessions_avoided += flight->cost;
      detail::credit_sessions_avoided(flight->cost);
      return *flight->value;
    }
    flight = std::make_shared<Flight>();
    s.flights.emplace(key, flight);
  }

  const auto started = std::chrono::steady_clock::now();
  const std::uint64_t cost_before = detail::session_cost_clock();
  std::optional<V> value;
  std::exception_ptr error;
  try {
    value.emplace(loader(key));
  } catch (...) {
    error = std::current_exception();
  }
  const std::uint64_t cost = detail::session_cost_clock() - cost_before;
  const auto took = std::chrono::steady_clock::now() - started;

  {
    typename Shard::WriterLock lock(s.mu);
    s.counts.load_time += took;
    if (error) {
      ++s.counts.load_failures;
      flight->error = error;
    } else {
      ++s.counts.loads;
      flight->value = *value;
      flight->cost = cost;
      if (!flight->stale) {
        const auto now = clock_->now();
        s.insert(probe, *value, expiry(now, ttl), now, cost);
      }
    }
    flight->done = true;
    if (auto it = s.flights.find(key); it != s.flights.end() && it->second == flight) {
      s.flights.erase(it);
    }
    flight->done_cv.notify_all();
  }
  if (error) std::rethrow_exception(error);
  return std::move(*value);
}

template <class K, class V, class Hash, class Eq>
template <class Range, class F>
WarmResult TtlCache<K, V, Hash, Eq>::warm(const Range& keys, F&& loader) {
  WarmResult result;
  for (const K& key : keys) {
    const Probe<K> probe{key, hash_of(key)};
    Shard& s = shard_of(probe.hash);
    {
      typename Shard::WriterLock lock(s.mu);
      if (s.find_live(probe, clock_->now()) != nullptr) {
        ++result.present;
        continue;
      }
    }
    try {
      load(key, probe.hash, loader, std::nullopt, /*refresh=*/true);
      ++result.loaded;
    } catch (...) {
      ++result.failed;
    }
  }
  return result;
}

}  // namespace poolscope::cache
