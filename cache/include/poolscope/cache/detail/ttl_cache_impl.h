// TtlCache's implementation: construction, the hit path, put. Included by
// ttl_cache.h only; the data structures and their invariants are in
// ttl_cache_node.h and ttl_cache_shard.h, loads in ttl_cache_load_impl.h.

#pragma once

#include <algorithm>
#include <bit>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace poolscope::cache {
namespace detail {

// d as nanoseconds, saturating (milliseconds::max() is about 10^6 times
// what nanoseconds can hold).
inline std::chrono::nanoseconds saturated_ns(std::chrono::milliseconds d) noexcept {
  constexpr auto kMaxMs =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::nanoseconds::max());
  return d >= kMaxMs ? std::chrono::nanoseconds::max() : std::chrono::nanoseconds(d);
}

}  // namespace detail

template <class K, class V, class Hash, class Eq>
TtlCache<K, V, Hash, Eq>::TtlCache(TtlCacheConfig config)
    : config_((config.validate(), std::move(config))),
      clock_(config_.clock != nullptr ? config_.clock : default_clock()),
      coarse_(dynamic_cast<const CoarseClock*>(clock_.get()) != nullptr),
      ttl_(detail::saturated_ns(config_.ttl)),
      // No more shards than entries, so each can hold at least one.
      shard_bits_(std::countr_zero(std::min(config_.shards, std::bit_floor(config_.max_entries)))),
      shard_mask_((std::size_t{1} << shard_bits_) - 1),
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
template <class Q>
std::size_t TtlCache<K, V, Hash, Eq>::hash_of(const Q& key) const noexcept(noexcept(Hash{}(key))) {
  // Fibonacci hashing spreads the bits (std::hash of an integer is the
  // integer); rotating brings the top bits, the best mixed, to the bottom
  // for the shard, and the next ones to the top for the bucket.
  return std::rotl(static_cast<std::uint64_t>(Hash{}(key)) * 0x9E3779B97F4A7C15ull, shard_bits_);
}

template <class K, class V, class Hash, class Eq>
auto TtlCache<K, V, Hash, Eq>::checked_ttl(std::optional<std::chrono::milliseconds> ttl) const
    -> Nanos {
  if (!ttl) return ttl_;
  if (ttl->count() < 0) {
    throw std::invalid_argument("TtlCache '" + config_.name +
                                "': a TTL must not be negative (got " +
                                std::to_string(ttl->count()) + " ms)");
  }
  return detail::saturated_ns(*ttl);
}

template <class K, class V, class Hash, class Eq>
auto TtlCache<K, V, Hash, Eq>::expiry(TimePoint now, Nanos ttl) noexcept -> TimePoint {
  if (ttl.count() == 0 || ttl >= TimePoint::max() - now) return TimePoint::max();
  return now + ttl;
}

template <class K, class V, class Hash, class Eq>
void TtlCache<K, V, Hash, Eq>::limit_by(detail::LoadFrame* reader, const Node& n,
                                        TimePoint now) noexcept {
  if (reader != nullptr && n.expires != TimePoint::max()) reader->limit_lifetime(n.expires - now);
}

template <class K, class V, class Hash, class Eq>
template <bool kCountAbsent, class Q, class F>
inline auto TtlCache<K, V, Hash, Eq>::try_hit(Shard& s, const Probe<Q>& probe, F& f) -> Lookup {
  typename Shard::ReaderLock lock(s.mu);
  detail::ReaderCounts& mine = lock.local();
  const Node* n = s.find(probe);
  if (n == nullptr) {
    if constexpr (kCountAbsent) ++mine.misses;
    return Lookup::kAbsent;
  }
  // Expired: dropping it changes the table, which is for the writer's lock.
  if (n->expires != TimePoint::max() && n->expires <= now()) return Lookup::kExpired;
  Shard::count_hit(*n, mine.hits, mine.sessions_avoided);
  f(std::as_const(n->value));
  return Lookup::kHit;
}

template <class K, class V, class Hash, class Eq>
template <class Q, class F>
bool TtlCache<K, V, Hash, Eq>::visit(const Q& key, F&& f) {
  const Probe<Q> probe{key, hash_of(key)};
  Shard& s = shard_of(probe.hash);
  detail::LoadFrame* const reader = detail::t_load_frame;
  if (reader == nullptr) [[likely]] {
    switch (try_hit</*kCountAbsent=*/true>(s, probe, f)) {
      case Lookup::kHit:
        return true;
      case Lookup::kAbsent:
        return false;
      case Lookup::kExpired:
        break;
    }
  }
  return visit_exclusive(s, probe, f, reader);
}

template <class K, class V, class Hash, class Eq>
template <class Q, class F>
bool TtlCache<K, V, Hash, Eq>::visit_exclusive(Shard& s, const Probe<Q>& probe, F& f,
                                               detail::LoadFrame* reader) {
  // A key looked up as another type is recorded as a K (a std::string for a
  // std::string_view, say); one that makes no K is not recorded.
  std::optional<K> converted;
  const K* key = nullptr;
  if constexpr (std::is_same_v<Q, K>) {
    key = &probe.key;
  } else if constexpr (std::is_constructible_v<K, const Q&>) {
    if (reader != nullptr) key = &converted.emplace(probe.key);
  }
  const std::shared_ptr<detail::Dependent>* dependent =
      reader != nullptr && key != nullptr ? &reader->dependent() : nullptr;
  const TimePoint t = now();
  typename Shard::WriterLock lock(s.mu);
  // With the lookup, under one lock: an invalidation either comes after this
  // and finds the reader's Dependent, or came before and left nothing to read.
  if (dependent != nullptr) s.add_dependent(*key, *dependent);
  const Node* n = s.find_live(probe, t);  // put again meanwhile, if it had expired
  if (n == nullptr) {
    ++s.counts.misses;
    return false;
  }
  limit_by(reader, *n, t);
  s.count_hit(*n);
  f(std::as_const(n->value));
  return true;
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
  const Nanos d = checked_ttl(ttl);
  const Probe<K> probe{key, hash_of(key)};
  Shard& s = shard_of(probe.hash);
  const TimePoint t = now();
  detail::DependentList replaced;
  {
    typename Shard::WriterLock lock(s.mu);
    s.insert(probe, value, {expiry(t, d), t, 0, s.next_generation++, nullptr});
    s.detach_flight(key);  // a running load would overwrite this newer value
    s.take_dependents(key, replaced);
  }
  detail::invalidate_dependents(std::move(replaced));
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
  const Nanos d = checked_ttl(ttl);
  const Probe<K> probe{key, hash_of(key)};
  Shard& s = shard_of(probe.hash);
  // The common case, a hit, shares the lock; a miss, or a read that a load
  // running on this thread records, goes on under the writer's.
  detail::LoadFrame* const reader = detail::t_load_frame;
  if (reader == nullptr && try_hit</*kCountAbsent=*/false>(s, probe, f) == Lookup::kHit) return;
  std::optional<V> value;
  load(s, {probe, d, LoadMode::kGet, reader}, loader, value);
  f(std::as_const(*value));
}

template <class K, class V, class Hash, class Eq>
template <class F>
V TtlCache<K, V, Hash, Eq>::reload(const K& key, F&& loader,
                                   std::optional<std::chrono::milliseconds> ttl) {
  const Nanos d = checked_ttl(ttl);
  const Probe<K> probe{key, hash_of(key)};
  std::optional<V> value;
  load(shard_of(probe.hash), {probe, d, LoadMode::kReload, detail::t_load_frame}, loader, value);
  return std::move(*value);
}

}  // namespace poolscope::cache
