// TtlCache's implementation, continued: background refresh, invalidation,
// the invalidation listeners, and statistics. Included by ttl_cache.h only.
//
// Invalidating by predicate (prefix, glob, invalidate_if) never holds a
// shard's exclusive lock while it matches: it collects the matching keys a
// few dozen buckets at a time under the shared lock (running loads first,
// then entries, then dependents, so that a load ending meanwhile is seen as
// one or the other), then removes them a few dozen at a time under the
// exclusive lock. A key cached meanwhile by a load that began before the
// invalidation is covered through its running load.

#pragma once

#include <utility>

namespace poolscope::cache {
namespace detail {

// Buckets matched per shared-lock step, keys removed per exclusive-lock step.
inline constexpr std::size_t kScanChunk = 64;
inline constexpr std::size_t kRemoveChunk = 64;

}  // namespace detail

template <class K, class V, class Hash, class Eq>
void TtlCache<K, V, Hash, Eq>::enable_refresh(std::function<V(const K&)> loader,
                                              std::chrono::milliseconds refresh_after) {
  if (refresh_after.count() <= 0) {
    throw std::invalid_argument("TtlCache::enable_refresh: refresh_after must be positive (got " +
                                std::to_string(refresh_after.count()) + " ms)");
  }
  const Nanos after = detail::saturated_ns(refresh_after);
  // A quarter of refresh_after, at least 10 ms, at most a day.
  const auto period =
      std::clamp(after / 4, Nanos(std::chrono::milliseconds(10)), Nanos(std::chrono::hours(24)));
  poolscope::detail::MutexLock lock(refresh_mu_);
  if (refresher_ != nullptr) throw std::logic_error("TtlCache::enable_refresh: already enabled");
  refresher_ = std::make_unique<poolscope::detail::PeriodicWorker>(
      period, [this, loader = std::move(loader), after](std::stop_token stop) {
        refresh_due(stop, loader, after);
      });
}

template <class K, class V, class Hash, class Eq>
void TtlCache<K, V, Hash, Eq>::refresh_due(std::stop_token stop,
                                           const std::function<V(const K&)>& loader,
                                           Nanos refresh_after) {
  for (std::size_t i = 0; i <= shard_mask_ && !stop.stop_requested(); ++i) {
    Shard& s = shards_[i];
    std::vector<K> due;
    const TimePoint t = now();
    scan(s, ScanPart::kEntries, [&](const K& key, const Node* n) {
      if ((n->marks.load(std::memory_order_relaxed) & Node::kReadSinceLoad) != 0 &&
          n->expires > t && t - n->loaded >= refresh_after) {
        due.push_back(key);
      }
    });
    for (const K& key : due) {
      const Probe<K> probe{key, hash_of(key)};
      std::optional<V> unused;
      try {
        load(s, {probe, ttl_, LoadMode::kRefresh, nullptr}, loader, unused);
      } catch (...) {
        // Counted as a load failure; the old value serves until its TTL.
      }
    }
  }
}

template <class K, class V, class Hash, class Eq>
template <class F>
void TtlCache<K, V, Hash, Eq>::scan(Shard& s, ScanPart part, F&& f) {
  // A table that grew between two steps has moved its contents: start
  // again (a key seen twice is harmless to every caller).
  for (std::size_t next = 0, buckets = 0;;) {
    typename Shard::ReaderLock lock(s.mu, Shard::Mutex::Kind::kScan);
    if (s.bucket_count(part) != buckets) {
      buckets = s.bucket_count(part);
      next = 0;
    }
    if (next >= buckets) return;
    next = s.visit_buckets(part, next, next + detail::kScanChunk, f);
  }
}

template <class K, class V, class Hash, class Eq>
template <class Pred>
std::vector<K> TtlCache<K, V, Hash, Eq>::matching_keys(Shard& s, Pred& pred) {
  std::vector<K> keys;
  const auto collect = [&](const K& key, const Node*) {
    if (pred(key)) keys.push_back(key);
  };
  {
    typename Shard::ReaderLock lock(s.mu, Shard::Mutex::Kind::kScan);  // few: the running loads
    for (const auto& entry : s.flights) collect(entry.first, nullptr);
  }
  scan(s, ScanPart::kEntries, collect);
  scan(s, ScanPart::kDependents, collect);
  return keys;
}

template <class K, class V, class Hash, class Eq>
std::size_t TtlCache<K, V, Hash, Eq>::remove_keys(Shard& s, const std::vector<K>& keys) {
  std::size_t removed = 0;
  for (std::size_t i = 0; i < keys.size();) {
    std::vector<std::unique_ptr<Node>> gone;  // destroyed outside the lock
    detail::DependentList fired;
    {
      typename Shard::WriterLock lock(s.mu);
      for (const std::size_t end = std::min(keys.size(), i + detail::kRemoveChunk); i < end; ++i) {
        if (s.invalidate_key(Probe<K>{keys[i], hash_of(keys[i])}, gone, fired)) ++removed;
      }
    }
    detail::invalidate_dependents(std::move(fired));
  }
  return removed;
}

template <class K, class V, class Hash, class Eq>
template <class Pred>
std::size_t TtlCache<K, V, Hash, Eq>::invalidate_matching(Pred& pred) {
  std::size_t removed = 0;
  for (std::size_t i = 0; i <= shard_mask_; ++i) {
    removed += remove_keys(shards_[i], matching_keys(shards_[i], pred));
  }
  return removed;
}

template <class K, class V, class Hash, class Eq>
void TtlCache<K, V, Hash, Eq>::clear_local() {
  for (std::size_t i = 0; i <= shard_mask_; ++i) {
    Shard& s = shards_[i];
    // Everything is taken out under the lock, and destroyed outside it.
    detail::ShardTable<Node> table;
    typename Shard::Dependents dependents;
    {
      typename Shard::WriterLock lock(s.mu);
      s.table.swap(table);
      s.head = s.tail = nullptr;
      s.bytes = 0;
      s.counts.evictions_invalidated += table.size();
      for (auto it = s.flights.begin(); it != s.flights.end();) it = s.detach_flight(it);
      s.dependents.swap(dependents);
      s.sweep_dependents_at = 64;
    }
    detail::DependentList fired;
    for (auto& [key, list] : dependents) fired.insert(fired.end(), list.begin(), list.end());
    detail::invalidate_dependents(std::move(fired));
  }
}

template <class K, class V, class Hash, class Eq>
bool TtlCache<K, V, Hash, Eq>::erase_local(const K& key) {
  const Probe<K> probe{key, hash_of(key)};
  Shard& s = shard_of(probe.hash);
  std::vector<std::unique_ptr<Node>> gone;
  detail::DependentList fired;
  bool removed = false;
  {
    typename Shard::WriterLock lock(s.mu);
    removed = s.invalidate_key(probe, gone, fired);
  }
  detail::invalidate_dependents(std::move(fired));
  return removed;
}

template <class K, class V, class Hash, class Eq>
bool TtlCache<K, V, Hash, Eq>::erase(const K& key) {
  const bool removed = erase_local(key);
  notify({Invalidation<K>::Kind::kKey, key, {}});
  return removed;
}

template <class K, class V, class Hash, class Eq>
std::size_t TtlCache<K, V, Hash, Eq>::prefix_local(std::string_view prefix)
  requires StringKey<K>
{
  auto pred = [prefix](const K& key) { return std::string_view(key).starts_with(prefix); };
  return invalidate_matching(pred);
}

template <class K, class V, class Hash, class Eq>
std::size_t TtlCache<K, V, Hash, Eq>::glob_local(std::string_view pattern)
  requires StringKey<K>
{
  const GlobPattern glob(pattern);
  auto pred = [&glob](const K& key) { return glob.matches(std::string_view(key)); };
  return invalidate_matching(pred);
}

template <class K, class V, class Hash, class Eq>
std::size_t TtlCache<K, V, Hash, Eq>::invalidate_prefix(std::string_view prefix)
  requires StringKey<K>
{
  const std::size_t n = prefix_local(prefix);
  notify({Invalidation<K>::Kind::kPrefix, std::nullopt, std::string(prefix)});
  return n;
}

template <class K, class V, class Hash, class Eq>
std::size_t TtlCache<K, V, Hash, Eq>::invalidate_glob(std::string_view pattern)
  requires StringKey<K>
{
  const std::size_t n = glob_local(pattern);
  notify({Invalidation<K>::Kind::kGlob, std::nullopt, std::string(pattern)});
  return n;
}

template <class K, class V, class Hash, class Eq>
template <class Pred>
std::size_t TtlCache<K, V, Hash, Eq>::invalidate_if(Pred pred) {
  return invalidate_matching(pred);
}

template <class K, class V, class Hash, class Eq>
void TtlCache<K, V, Hash, Eq>::clear() {
  clear_local();
  notify({Invalidation<K>::Kind::kAll, std::nullopt, {}});
}

template <class K, class V, class Hash, class Eq>
void TtlCache<K, V, Hash, Eq>::apply(const Invalidation<K>& invalidation) {
  using Kind = typename Invalidation<K>::Kind;
  switch (invalidation.kind) {
    case Kind::kKey:
      if (invalidation.key) erase_local(*invalidation.key);
      break;
    case Kind::kPrefix:
      if constexpr (StringKey<K>) prefix_local(invalidation.pattern);
      break;
    case Kind::kGlob:
      if constexpr (StringKey<K>) glob_local(invalidation.pattern);
      break;
    case Kind::kAll:
      clear_local();
      break;
  }
}

}  // namespace poolscope::cache
