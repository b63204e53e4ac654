// TtlCache's implementation, continued: background refresh, invalidation,
// the invalidation listener, and statistics. Included by ttl_cache.h only.

#pragma once

#include <condition_variable>
#include <mutex>
#include <utility>

namespace poolscope::cache {

template <class K, class V, class Hash, class Eq>
void TtlCache<K, V, Hash, Eq>::enable_refresh(std::function<V(const K&)> loader,
                                              std::chrono::milliseconds refresh_after) {
  if (refresh_after.count() <= 0) {
    throw std::invalid_argument("TtlCache::enable_refresh: refresh_after must be positive (got " +
                                std::to_string(refresh_after.count()) + " ms)");
  }
  poolscope::detail::MutexLock lock(refresh_mu_);
  if (refresher_.joinable()) throw std::logic_error("TtlCache::enable_refresh: already enabled");
  refresher_ =
      std::jthread([this, loader = std::move(loader), refresh_after](std::stop_token stop) {
        refresh_loop(stop, loader, refresh_after);
      });
}

template <class K, class V, class Hash, class Eq>
void TtlCache<K, V, Hash, Eq>::refresh_loop(std::stop_token stop, std::function<V(const K&)> loader,
                                            std::chrono::milliseconds refresh_after) {
  const auto period = std::max(refresh_after / 4, std::chrono::milliseconds(10));
  std::mutex mu;
  std::condition_variable_any wake;
  std::unique_lock sleep_lock(mu);
  while (!wake.wait_for(sleep_lock, stop, period, [&] { return stop.stop_requested(); })) {
    for (std::size_t i = 0; i <= shard_mask_ && !stop.stop_requested(); ++i) {
      Shard& s = shards_[i];
      std::vector<K> due;
      {
        typename Shard::WriterLock lock(s.mu);
        const auto now = clock_->now();
        for (const auto& [key, node] : s.map) {
          if (node.read_since_load.load(std::memory_order_relaxed) && node.expires > now &&
              now - node.loaded >= refresh_after && !s.flights.contains(key.key)) {
            due.push_back(key.key);
          }
        }
      }
      for (const K& key : due) {
        const Probe<K> probe{key, hash_of(key)};
        std::optional<V> unused;
        try {
          load(s, probe, clock_->now(), loader, config_.ttl, LoadMode::kRefresh, unused);
        } catch (...) {
          // Counted as a load failure; the old value serves until its TTL.
        }
      }
    }
  }
}

template <class K, class V, class Hash, class Eq>
template <class Pred>
std::size_t TtlCache<K, V, Hash, Eq>::invalidate_matching(Pred pred) {
  std::size_t removed = 0;
  for (std::size_t i = 0; i <= shard_mask_; ++i) {
    Shard& s = shards_[i];
    typename Shard::WriterLock lock(s.mu);
    for (auto it = s.map.begin(); it != s.map.end();) {
      auto next = std::next(it);
      if (pred(std::as_const(it->first.key))) {
        s.invalidate(it);
        ++removed;
      }
      it = next;
    }
    for (auto it = s.flights.begin(); it != s.flights.end();) {
      it = pred(std::as_const(it->first)) ? s.detach_flight(it) : std::next(it);
    }
  }
  return removed;
}

template <class K, class V, class Hash, class Eq>
bool TtlCache<K, V, Hash, Eq>::erase_local(const K& key) {
  const Probe<K> probe{key, hash_of(key)};
  Shard& s = shard_of(probe.hash);
  typename Shard::WriterLock lock(s.mu);
  s.detach_flight(key);
  const auto it = s.map.find(probe);
  if (it == s.map.end()) return false;
  s.invalidate(it);
  return true;
}

template <class K, class V, class Hash, class Eq>
std::size_t TtlCache<K, V, Hash, Eq>::prefix_local(std::string_view prefix)
  requires StringKey<K>
{
  return invalidate_matching(
      [prefix](const K& key) { return std::string_view(key).starts_with(prefix); });
}

template <class K, class V, class Hash, class Eq>
std::size_t TtlCache<K, V, Hash, Eq>::glob_local(std::string_view pattern)
  requires StringKey<K>
{
  const std::string_view literal = glob_literal_prefix(pattern);
  return invalidate_matching([pattern, literal](const K& key) {
    const std::string_view k(key);
    return k.starts_with(literal) && glob_match(pattern, k);
  });
}

template <class K, class V, class Hash, class Eq>
bool TtlCache<K, V, Hash, Eq>::erase(const K& key) {
  const bool removed = erase_local(key);
  notify({Invalidation<K>::Kind::kKey, key, {}});
  return removed;
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
  return invalidate_matching(std::move(pred));
}

template <class K, class V, class Hash, class Eq>
void TtlCache<K, V, Hash, Eq>::clear() {
  invalidate_matching([](const K&) { return true; });
  notify({Invalidation<K>::Kind::kAll, std::nullopt, {}});
}

template <class K, class V, class Hash, class Eq>
std::size_t TtlCache<K, V, Hash, Eq>::purge_expired() {
  std::size_t removed = 0;
  const auto now = clock_->now();
  for (std::size_t i = 0; i <= shard_mask_; ++i) {
    Shard& s = shards_[i];
    typename Shard::WriterLock lock(s.mu);
    for (auto it = s.map.begin(); it != s.map.end();) {
      auto next = std::next(it);
      if (it->second.expires <= now) {
        s.remove(it);
        ++s.counts.evictions_ttl;
        ++removed;
      }
      it = next;
    }
  }
  return removed;
}

template <class K, class V, class Hash, class Eq>
Subscription TtlCache<K, V, Hash, Eq>::add_invalidation_listener(Listener listener) {
  if (!listener) throw std::invalid_argument("TtlCache::add_invalidation_listener: empty listener");
  std::uint64_t id = 0;
  {
    poolscope::detail::MutexLock lock(listeners_->mu);
    id = listeners_->next_id++;
    listeners_->list.emplace_back(id, std::make_shared<const Listener>(std::move(listener)));
  }
  return Subscription([weak = std::weak_ptr<Listeners>(listeners_), id] {
    if (const std::shared_ptr<Listeners> set = weak.lock()) {
      poolscope::detail::MutexLock lock(set->mu);
      std::erase_if(set->list, [id](const auto& entry) { return entry.first == id; });
    }
  });
}

template <class K, class V, class Hash, class Eq>
void TtlCache<K, V, Hash, Eq>::notify(const Invalidation<K>& invalidation) {
  std::vector<std::shared_ptr<const Listener>> listeners;
  {
    poolscope::detail::MutexLock lock(listeners_->mu);
    if (listeners_->list.empty()) return;
    for (const auto& entry : listeners_->list) listeners.push_back(entry.second);
  }
  for (const std::shared_ptr<const Listener>& listener : listeners) {
    try {
      (*listener)(invalidation);
    } catch (...) {
      // A listener must not throw; one that does loses this call, nothing else.
    }
  }
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
      invalidate_matching([](const K&) { return true; });
      break;
  }
}

template <class K, class V, class Hash, class Eq>
CacheStats TtlCache<K, V, Hash, Eq>::stats() const {
  CacheStats total;
  total.name = config_.name;
  for (std::size_t i = 0; i <= shard_mask_; ++i) {
    const Shard& s = shards_[i];
    typename Shard::WriterLock lock(s.mu);
    s.mu.for_each_local([&](const detail::ReaderCounts& r) {
      total.hits += r.hits;
      total.misses += r.misses;
      total.sessions_avoided += r.sessions_avoided;
    });
    total.hits += s.counts.hits;
    total.misses += s.counts.misses;
    total.loads += s.counts.loads;
    total.load_failures += s.counts.load_failures;
    total.load_time += s.counts.load_time;
    total.evictions_capacity += s.counts.evictions_capacity;
    total.evictions_ttl += s.counts.evictions_ttl;
    total.evictions_invalidated += s.counts.evictions_invalidated;
    total.sessions_avoided += s.counts.sessions_avoided;
    total.entries += s.map.size();
    total.approximate_bytes += s.bytes;
  }
  return total;
}

}  // namespace poolscope::cache
