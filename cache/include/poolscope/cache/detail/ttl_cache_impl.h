// TtlCache's implementation; included by ttl_cache.h only.
//
// Invariants, per shard and under its mutex: every entry of `map` is in the
// LRU list exactly once (head = most recently used); `bytes` is the sum of the
// entries' sizes; `flights` holds at most one running load per key, and a
// load that an invalidation covered is marked stale and removed from it.

#pragma once

#include <algorithm>
#include <bit>
#include <condition_variable>
#include <mutex>

namespace poolscope::cache {

template <class K, class V, class Hash, class Eq>
struct TtlCache<K, V, Hash, Eq>::Node {
  V value;
  std::chrono::steady_clock::time_point expires;  // time_point::max(): never
  std::chrono::steady_clock::time_point loaded;
  std::uint64_t cost = 0;  // sessions a hit avoids
  std::size_t bytes = 0;
  bool read_since_load = false;
  const K* key = nullptr;  // the map's own key
  Node* prev = nullptr;
  Node* next = nullptr;
};

template <class K, class V, class Hash, class Eq>
struct TtlCache<K, V, Hash, Eq>::Flight {
  std::condition_variable_any done_cv;  // waited on with the shard's mutex
  bool done = false;
  bool stale = false;  // invalidated while loading: not cached
  std::optional<V> value;
  std::exception_ptr error;
  std::uint64_t cost = 0;
};

template <class K, class V, class Hash, class Eq>
struct alignas(64) TtlCache<K, V, Hash, Eq>::Shard {
  using Map = std::unordered_map<K, Node, Hash, Eq>;

  mutable poolscope::detail::SpinningMutex mu;
  Map map;
  std::unordered_map<K, std::shared_ptr<Flight>, Hash, Eq> flights;
  Node* head = nullptr;
  Node* tail = nullptr;
  std::size_t capacity = 0;
  std::uint64_t bytes = 0;
  CacheStats counts;  // entries and bytes filled in by stats()

  void unlink(Node* n) noexcept {
    (n->prev != nullptr ? n->prev->next : head) = n->next;
    (n->next != nullptr ? n->next->prev : tail) = n->prev;
    n->prev = n->next = nullptr;
  }
  void link_front(Node* n) noexcept {
    n->prev = nullptr;
    n->next = head;
    (head != nullptr ? head->prev : tail) = n;
    head = n;
  }
  void touch(Node* n) noexcept {
    if (head != n) {
      unlink(n);
      link_front(n);
    }
  }
  void remove(typename Map::iterator it) {
    unlink(&it->second);
    bytes -= it->second.bytes;
    map.erase(it);
  }
  // The hit path: the live entry for key, or null (an expired one is dropped).
  template <class Q>
  Node* find_live(const Q& key, std::chrono::steady_clock::time_point now) {
    auto it = map.find(key);
    if (it == map.end()) return nullptr;
    if (it->second.expires <= now) {
      remove(it);
      ++counts.evictions_ttl;
      return nullptr;
    }
    return &it->second;
  }
  V hit(Node* n) {
    touch(n);
    n->read_since_load = true;
    ++counts.hits;
    counts.sessions_avoided += n->cost;
    detail::credit_sessions_avoided(n->cost);
    return n->value;
  }
  void insert(const K& key, const V& value, std::chrono::steady_clock::time_point expires,
              std::chrono::steady_clock::time_point now, std::uint64_t cost) {
    auto [it, inserted] = map.try_emplace(key, Node{value, expires, now, cost});
    Node& n = it->second;
    if (inserted) {
      n.key = &it->first;
      link_front(&n);
    } else {
      bytes -= n.bytes;
      n.value = value;
      n.expires = expires;
      n.loaded = now;
      n.cost = cost;
      n.read_since_load = false;
      touch(&n);
    }
    n.bytes = sizeof(Node) + 2 * sizeof(void*) + approximate_bytes(key) + approximate_bytes(value);
    bytes += n.bytes;
    while (map.size() > capacity) {
      remove(map.find(*tail->key));
      ++counts.evictions_capacity;
    }
  }
};

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
template <class Q>
auto TtlCache<K, V, Hash, Eq>::shard_for(const Q& key) const noexcept -> Shard& {
  std::size_t h = Hash{}(key);
  h ^= h >> 17;
  h *= 0x9E3779B97F4A7C15ull;
  return shards_[(h >> 32) & shard_mask_];
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
  Shard& s = shard_for(key);
  const auto now = clock_->now();
  poolscope::detail::SpinningMutexLock lock(s.mu);
  if (Node* n = s.find_live(key, now)) return s.hit(n);
  ++s.counts.misses;
  return std::nullopt;
}

template <class K, class V, class Hash, class Eq>
void TtlCache<K, V, Hash, Eq>::put(const K& key, V value, std::optional<std::chrono::milliseconds> ttl) {
  Shard& s = shard_for(key);
  const auto now = clock_->now();
  const auto expires = expiry(now, ttl);
  poolscope::detail::SpinningMutexLock lock(s.mu);
  s.insert(key, value, expires, now, 0);
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
  return load(shard_for(key), key, std::forward<F>(loader), ttl, /*refresh=*/false);
}

template <class K, class V, class Hash, class Eq>
template <class F>
V TtlCache<K, V, Hash, Eq>::load(Shard& s, const K& key, F&& loader,
                                 std::optional<std::chrono::milliseconds> ttl, bool refresh) {
  std::shared_ptr<Flight> flight;
  s.mu.lock();
  if (!refresh) {
    if (Node* n = s.find_live(key, clock_->now())) {
      V value = s.hit(n);
      s.mu.unlock();
      return value;
    }
    ++s.counts.misses;
  }
  if (auto it = s.flights.find(key); it != s.flights.end()) {
    // Someone is loading this key: wait for that result instead.
    flight = it->second;
    flight->done_cv.wait(s.mu, [&] { return flight->done; });
    if (flight->error) {
      s.mu.unlock();
      std::rethrow_exception(flight->error);
    }
    V value = *flight->value;
    s.counts.sessions_avoided += flight->cost;
    detail::credit_sessions_avoided(flight->cost);
    s.mu.unlock();
    return value;
  }
  flight = std::make_shared<Flight>();
  s.flights.emplace(key, flight);
  s.mu.unlock();

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
    poolscope::detail::SpinningMutexLock lock(s.mu);
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
        s.insert(key, *value, expiry(now, ttl), now, cost);
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
    Shard& s = shard_for(key);
    {
      poolscope::detail::SpinningMutexLock lock(s.mu);
      if (s.find_live(key, clock_->now()) != nullptr) {
        ++result.present;
        continue;
      }
    }
    try {
      load(s, key, loader, std::nullopt, /*refresh=*/true);
      ++result.loaded;
    } catch (...) {
      ++result.failed;
    }
  }
  return result;
}

}  // namespace poolscope::cache
