// TtlCache's implementation: lookups, puts and single-flight loads.
// Included by ttl_cache.h only; the data structures and their invariants
// are in ttl_cache_shard.h.

#pragma once

#include <algorithm>
#include <bit>
#include <mutex>
#include <utility>

namespace poolscope::cache {

template <class K, class V, class Hash, class Eq>
TtlCache<K, V, Hash, Eq>::TtlCache(TtlCacheConfig config)
    : config_((config.validate(), std::move(config))),
      clock_(config_.clock != nullptr ? config_.clock : default_clock()),
      // No more shards than entries, so each can hold at least one.
      shard_mask_(std::min(config_.shards, std::bit_floor(config_.max_entries)) - 1),
      shards_(new Shard[shard_mask_ + 1]) {
  const std::size_t count = shard_mask_ + 1;
  for (std::size_t i = 0; i < count; ++i) {
    shards_[i].capacity = config_.max_entries / count + (i < config_.max_entries % count ? 1 : 0);
  }
}

template <class K, class V, class Hash, class Eq>
TtlCache<K, V, Hash, Eq>::~TtlCache() {
  lifeline_.end();  // first: a scrape reading stats() finishes before anything goes
}

template <class K, class V, class Hash, class Eq>
auto TtlCache<K, V, Hash, Eq>::shard_of(std::size_t hash) const noexcept -> Shard& {
  // The bucket uses the hash's low bits; the shard, remixed high bits.
  hash ^= hash >> 17;
  hash *= 0x9E3779B97F4A7C15ull;
  return shards_[(hash >> 32) & shard_mask_];
}

template <class K, class V, class Hash, class Eq>
std::chrono::milliseconds TtlCache<K, V, Hash, Eq>::checked_ttl(
    std::optional<std::chrono::milliseconds> ttl) const {
  const std::chrono::milliseconds d = ttl.value_or(config_.ttl);
  if (d.count() < 0) {
    throw std::invalid_argument("TtlCache '" + config_.name +
                                "': a TTL must not be negative (got " + std::to_string(d.count()) +
                                " ms)");
  }
  return d;
}

template <class K, class V, class Hash, class Eq>
auto TtlCache<K, V, Hash, Eq>::expiry(TimePoint now, std::chrono::milliseconds ttl) noexcept
    -> TimePoint {
  return ttl.count() == 0 ? TimePoint::max() : now + ttl;
}

template <class K, class V, class Hash, class Eq>
template <bool kCountAbsent, class Q, class F>
auto TtlCache<K, V, Hash, Eq>::try_hit(Shard& s, const Probe<Q>& probe, TimePoint now, F& f)
    -> Lookup {
  typename Shard::ReaderLock lock(s.mu);
  detail::ReaderCounts& mine = lock.local();
  const auto it = s.map.find(probe);
  if (it == s.map.end()) {
    if constexpr (kCountAbsent) ++mine.misses;
    return Lookup::kAbsent;
  }
  // Expired: dropping it changes the map, which is for the writer's lock.
  if (it->second.expires <= now) return Lookup::kExpired;
  Shard::count_hit(it->second, mine.hits, mine.sessions_avoided);
  f(std::as_const(it->second.value));
  return Lookup::kHit;
}

template <class K, class V, class Hash, class Eq>
template <class Q, class F>
bool TtlCache<K, V, Hash, Eq>::visit(const Q& key, F&& f) {
  const auto now = clock_->now();
  const Probe<Q> probe{key, hash_of(key)};
  Shard& s = shard_of(probe.hash);
  switch (try_hit</*kCountAbsent=*/true>(s, probe, now, f)) {
    case Lookup::kHit:
      return true;
    case Lookup::kAbsent:
      return false;
    case Lookup::kExpired:
      break;
  }
  typename Shard::WriterLock lock(s.mu);
  if (Node* n = s.find_live(probe, now)) {  // put again meanwhile
    s.count_hit(*n);
    f(std::as_const(n->value));
    return true;
  }
  ++s.counts.misses;
  return false;
}

template <class K, class V, class Hash, class Eq>
template <class Q>
std::optional<V> TtlCache<K, V, Hash, Eq>::get(const Q& key) {
  std::optional<V> out;
  visit(key, [&out](const V& value) { out.emplace(value); });
  return out;
}

template <class K, class V, class Hash, class Eq>
void TtlCache<K, V, Hash, Eq>::put(const K& key, V value,
                                   std::optional<std::chrono::milliseconds> ttl) {
  const auto d = checked_ttl(ttl);
  const Probe<K> probe{key, hash_of(key)};
  Shard& s = shard_of(probe.hash);
  const auto now = clock_->now();
  typename Shard::WriterLock lock(s.mu);
  s.insert(probe, value, expiry(now, d), now, 0);
  s.detach_flight(key);  // a running load would overwrite this newer value
}

template <class K, class V, class Hash, class Eq>
template <class F>
V TtlCache<K, V, Hash, Eq>::get_or_load(const K& key, F&& loader,
                                        std::optional<std::chrono::milliseconds> ttl) {
  std::optional<V> out;
  visit_or_load(
      key, loader, [&out](const V& value) { out.emplace(value); }, ttl);
  return std::move(*out);
}

template <class K, class V, class Hash, class Eq>
template <class F, class L>
void TtlCache<K, V, Hash, Eq>::visit_or_load(const K& key, L&& loader, F&& f,
                                             std::optional<std::chrono::milliseconds> ttl) {
  const auto d = checked_ttl(ttl);
  const auto now = clock_->now();
  const Probe<K> probe{key, hash_of(key)};
  Shard& s = shard_of(probe.hash);
  // The common case, a hit, shares the lock; a miss goes on under the writer's.
  if (try_hit</*kCountAbsent=*/false>(s, probe, now, f) == Lookup::kHit) return;
  std::optional<V> value;
  load(s, probe, now, loader, d, LoadMode::kGet, value);
  f(std::as_const(*value));
}

template <class K, class V, class Hash, class Eq>
template <class F>
V TtlCache<K, V, Hash, Eq>::reload(const K& key, F&& loader,
                                   std::optional<std::chrono::milliseconds> ttl) {
  const auto d = checked_ttl(ttl);
  const Probe<K> probe{key, hash_of(key)};
  std::optional<V> value;
  load(shard_of(probe.hash), probe, clock_->now(), loader, d, LoadMode::kReload, value);
  return std::move(*value);
}

template <class K, class V, class Hash, class Eq>
template <class F>
auto TtlCache<K, V, Hash, Eq>::load(Shard& s, const Probe<K>& probe, TimePoint now, F& loader,
                                    std::chrono::milliseconds ttl, LoadMode mode,
                                    std::optional<V>& out) -> LoadOutcome {
  const K& key = probe.key;
  std::shared_ptr<Flight> flight;
  {
    std::unique_lock lock(s.mu);
    if (mode == LoadMode::kGet || mode == LoadMode::kWarm) {
      if (Node* n = s.find_live(probe, now)) {
        if (mode == LoadMode::kWarm) return LoadOutcome::kPresent;
        s.count_hit(*n);  // put or loaded since the shared lookup
        out.emplace(n->value);
        return LoadOutcome::kHit;
      }
      if (mode == LoadMode::kGet) ++s.counts.misses;
    }
    if (auto it = s.flights.find(key); it != s.flights.end()) {
      switch (mode) {
        case LoadMode::kWarm:
        case LoadMode::kRefresh:
          return LoadOutcome::kInProgress;
        case LoadMode::kReload:
          s.detach_flight(it);
          break;
        case LoadMode::kGet:
          // Someone is loading this key: wait for that result instead.
          flight = it->second;
          flight->done_cv.wait(lock, [&] { return flight->done; });
          if (flight->error) std::rethrow_exception(flight->error);
          s.counts.sessions_avoided += flight->cost;
          detail::credit_sessions_avoided(flight->cost);
          out.emplace(*flight->value);
          return LoadOutcome::kJoined;
      }
    }
    flight = std::make_shared<Flight>();
    s.flights.emplace(key, flight);
  }

  // From here the flight must end, whatever throws: otherwise its waiters,
  // and every later miss on key, would wait for it forever.
  struct EndGuard {
    Shard& s;
    const K& key;
    const std::shared_ptr<Flight>& flight;
    bool ended = false;
    ~EndGuard() {
      if (ended) return;
      typename Shard::WriterLock lock(s.mu);
      if (!flight->error && !flight->value) {
        flight->error =
            std::make_exception_ptr(std::logic_error("TtlCache: a load ended without a result"));
      }
      s.end_flight(key, flight);
    }
  } guard{s, key, flight};

  const auto started = std::chrono::steady_clock::now();
  const std::uint64_t cost_before = detail::session_cost_clock();
  std::exception_ptr error;
  try {
    out.emplace(loader(key));
  } catch (...) {
    error = std::current_exception();
  }
  const std::uint64_t cost = detail::session_cost_clock() - cost_before;
  const auto took = std::chrono::steady_clock::now() - started;
  const auto loaded_at = clock_->now();

  {
    typename Shard::WriterLock lock(s.mu);
    s.counts.load_time += took;
    if (!error) {
      try {
        flight->value = *out;
        flight->cost = cost;
        if (!flight->stale) s.insert(probe, *out, expiry(loaded_at, ttl), loaded_at, cost);
      } catch (...) {
        // Copying the value failed: for this caller and the waiters alike.
        error = std::current_exception();
        flight->value.reset();
      }
    }
    if (error) {
      ++s.counts.load_failures;
      flight->error = error;
    } else {
      ++s.counts.loads;
    }
    s.end_flight(key, flight);
    guard.ended = true;
  }
  if (error) std::rethrow_exception(error);
  return LoadOutcome::kLoaded;
}

template <class K, class V, class Hash, class Eq>
template <class Range, class F>
WarmResult TtlCache<K, V, Hash, Eq>::warm(const Range& keys, F&& loader) {
  WarmResult result;
  for (const K& key : keys) {
    const Probe<K> probe{key, hash_of(key)};
    std::optional<V> unused;
    try {
      switch (load(shard_of(probe.hash), probe, clock_->now(), loader, config_.ttl, LoadMode::kWarm,
                   unused)) {
        case LoadOutcome::kPresent:
          ++result.present;
          break;
        case LoadOutcome::kInProgress:
          ++result.in_progress;
          break;
        default:
          ++result.loaded;
      }
    } catch (...) {
      ++result.failed;
    }
  }
  return result;
}

}  // namespace poolscope::cache
