// TtlCache's implementation, continued: expiry sweeps, the invalidation
// listeners, and statistics. Included by ttl_cache.h only.

#pragma once

#include <utility>

namespace poolscope::cache {

template <class K, class V, class Hash, class Eq>
std::size_t TtlCache<K, V, Hash, Eq>::purge_expired() {
  std::size_t removed = 0;
  const TimePoint t = now();
  for (std::size_t i = 0; i <= shard_mask_; ++i) {
    Shard& s = shards_[i];
    std::vector<std::unique_ptr<Node>> gone;  // destroyed outside the lock
    typename Shard::WriterLock lock(s.mu);
    std::vector<Node*> expired;
    s.table.for_each([&](Node& n) {
      if (n.expires <= t) expired.push_back(&n);
    });
    for (Node* n : expired) gone.push_back(s.remove(*n));
    s.counts.evictions_ttl += expired.size();
    removed += expired.size();
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
    total.entries += s.table.size();
    total.approximate_bytes += s.bytes;
  }
  return total;
}

}  // namespace poolscope::cache
