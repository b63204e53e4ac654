// TtlCache's data structures: the shard with its map, eviction list and
// in-flight loads, and the map's key. Included by ttl_cache.h only.
//
// Invariants, per shard and under its exclusive lock: every entry of `map`
// is in the eviction list exactly once; `bytes` is the sum of the entries'
// sizes; `flights` holds at most one running load per key, and a load that
// an invalidation, a put or a reload superseded is marked stale and removed
// from it (detach_flight). A flight leaves `flights` and is marked done, with
// a value or an error, exactly once (end_flight), however its load ends.
//
// A hit takes the shard's lock shared (ReadMostlyMutex: the reader's own
// CPU slot), so hits write no line another core reads: they count into
// their slot and set the entry's `referenced` bit only when it is clear.
// Everything that changes the map or the list takes the lock exclusively.
// Eviction is CLOCK (second chance) over the list: the entry at the tail
// goes unless it was read since the hand last passed it, in which case it
// moves to the front with its bit cleared. That orders entries as LRU does
// where it matters (an entry read since its insertion outlives one that was
// not) without a hit having to move anything.

#pragma once

#include <atomic>
#include <condition_variable>

namespace poolscope::cache {
namespace detail {

// What a hit counts, per reader slot.
struct ReaderCounts {
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  std::uint64_t sessions_avoided = 0;
};

}  // namespace detail

// The shard maps' key: the key and its hash, so that a lookup hashes once
// (shard and bucket share the hash, carried by a Probe) and walking a bucket
// compares hashes before keys and never hashes a stored key again.
template <class K, class V, class Hash, class Eq>
struct TtlCache<K, V, Hash, Eq>::MapKey {
  K key;
  std::size_t hash;
};

template <class K, class V, class Hash, class Eq>
template <class Q>
struct TtlCache<K, V, Hash, Eq>::Probe {
  const Q& key;
  std::size_t hash;
};

template <class K, class V, class Hash, class Eq>
struct TtlCache<K, V, Hash, Eq>::MapHash {
  using is_transparent = void;
  std::size_t operator()(const MapKey& k) const noexcept { return k.hash; }
  template <class Q>
  std::size_t operator()(const Probe<Q>& p) const noexcept {
    return p.hash;
  }
};

template <class K, class V, class Hash, class Eq>
struct TtlCache<K, V, Hash, Eq>::MapEq {
  using is_transparent = void;
  bool operator()(const MapKey& a, const MapKey& b) const {
    return a.hash == b.hash && Eq{}(a.key, b.key);
  }
  template <class Q>
  bool operator()(const Probe<Q>& p, const MapKey& k) const {
    return p.hash == k.hash && Eq{}(p.key, k.key);
  }
  template <class Q>
  bool operator()(const MapKey& k, const Probe<Q>& p) const {
    return p.hash == k.hash && Eq{}(k.key, p.key);
  }
};

template <class K, class V, class Hash, class Eq>
struct TtlCache<K, V, Hash, Eq>::Node {
  Node(const V& v, std::chrono::steady_clock::time_point expires_at,
       std::chrono::steady_clock::time_point loaded_at, std::uint64_t sessions)
      : value(v), expires(expires_at), loaded(loaded_at), cost(sessions) {}

  V value;
  std::chrono::steady_clock::time_point expires;  // time_point::max(): never
  std::chrono::steady_clock::time_point loaded;
  std::uint64_t cost = 0;  // sessions a hit avoids
  std::size_t bytes = 0;
  // Set by readers (sharing the lock, hence atomic, relaxed: only the
  // exclusive holder acts on them, and taking the lock orders them).
  mutable std::atomic<bool> referenced{false};       // read since the clock hand passed
  mutable std::atomic<bool> read_since_load{false};  // for background refresh
  const MapKey* key = nullptr;                       // the map's own key
  Node* prev = nullptr;
  Node* next = nullptr;
};

template <class K, class V, class Hash, class Eq>
struct TtlCache<K, V, Hash, Eq>::Flight {
  std::condition_variable_any done_cv;  // waited on with the shard's exclusive lock
  bool done = false;
  bool stale = false;  // invalidated while loading: not cached
  std::optional<V> value;
  std::exception_ptr error;
  std::uint64_t cost = 0;
};

template <class K, class V, class Hash, class Eq>
struct alignas(64) TtlCache<K, V, Hash, Eq>::Shard {
  using Map = std::unordered_map<MapKey, Node, MapHash, MapEq>;
  using Mutex = poolscope::detail::ReadMostlyMutex<detail::ReaderCounts>;
  using WriterLock = poolscope::detail::BasicMutexLock<Mutex>;
  using ReaderLock = typename Mutex::ReaderLock;

  mutable Mutex mu;
  Map map;
  using Flights = std::unordered_map<K, std::shared_ptr<Flight>, Hash, Eq>;
  Flights flights;
  Node* head = nullptr;  // the most recently inserted or promoted
  Node* tail = nullptr;  // where the clock hand looks first
  std::size_t capacity = 0;
  std::uint64_t bytes = 0;
  CacheStats counts;  // what writers count; readers count in their slots

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
  void remove(typename Map::iterator it) {
    unlink(&it->second);
    bytes -= it->second.bytes;
    map.erase(it);
  }
  // Under the exclusive lock: the live entry for key, or null (an expired
  // one is dropped).
  template <class Q>
  Node* find_live(const Probe<Q>& key, std::chrono::steady_clock::time_point now) {
    auto it = map.find(key);
    if (it == map.end()) return nullptr;
    if (it->second.expires <= now) {
      remove(it);
      ++counts.evictions_ttl;
      return nullptr;
    }
    return &it->second;
  }
  // Counts a hit on n in hits/sessions (a reader's slot or the shard's) and
  // marks n read; a reader writes the bits only when they are clear.
  static void count_hit(const Node& n, std::uint64_t& hits, std::uint64_t& sessions) noexcept {
    if (!n.referenced.load(std::memory_order_relaxed))
      n.referenced.store(true, std::memory_order_relaxed);
    if (!n.read_since_load.load(std::memory_order_relaxed)) {
      n.read_since_load.store(true, std::memory_order_relaxed);
    }
    ++hits;
    sessions += n.cost;
    detail::credit_sessions_avoided(n.cost);
  }
  void count_hit(const Node& n) noexcept { count_hit(n, counts.hits, counts.sessions_avoided); }
  // Removes the entry at it as invalidated.
  void invalidate(typename Map::iterator it) {
    remove(it);
    ++counts.evictions_invalidated;
  }
  // Supersedes the running load of key, if any: marked stale, its result
  // goes to its waiters but not into the map, and the next miss starts a
  // new load.
  void detach_flight(const K& key) {
    if (auto it = flights.find(key); it != flights.end()) detach_flight(it);
  }
  typename Flights::iterator detach_flight(typename Flights::iterator it) {
    it->second->stale = true;
    return flights.erase(it);
  }
  // Ends flight f of key: done (REQUIRES: with a value or an error), out of
  // `flights` unless superseded already, its waiters woken.
  void end_flight(const K& key, const std::shared_ptr<Flight>& f) noexcept {
    f->done = true;
    if (auto it = flights.find(key); it != flights.end() && it->second == f) flights.erase(it);
    f->done_cv.notify_all();
  }
  // Removes one entry: the first from the tail not read since the hand
  // passed it. REQUIRES: the map is not empty.
  void evict_one() {
    while (tail->referenced.load(std::memory_order_relaxed)) {
      Node* n = tail;
      n->referenced.store(false, std::memory_order_relaxed);
      unlink(n);
      link_front(n);
    }
    remove(map.find(*tail->key));
    ++counts.evictions_capacity;
  }
  void insert(const Probe<K>& key, const V& value, std::chrono::steady_clock::time_point expires,
              std::chrono::steady_clock::time_point now, std::uint64_t cost) {
    auto it = map.find(key);
    if (it == map.end()) {
      // Make room first, so the new entry is never the one evicted.
      while (!map.empty() && map.size() >= capacity) evict_one();
      it = map.try_emplace(MapKey{key.key, key.hash}, value, expires, now, cost).first;
      it->second.key = &it->first;
      link_front(&it->second);
    } else {
      Node& n = it->second;
      n.value = value;  // first: if copying throws, the entry is unchanged
      bytes -= n.bytes;
      n.expires = expires;
      n.loaded = now;
      n.cost = cost;
      n.read_since_load.store(false, std::memory_order_relaxed);
      n.referenced.store(false, std::memory_order_relaxed);
      unlink(&n);
      link_front(&n);
    }
    Node& n = it->second;
    n.bytes =
        sizeof(Node) + 2 * sizeof(void*) + approximate_bytes(key.key) + approximate_bytes(value);
    bytes += n.bytes;
  }
};

}  // namespace poolscope::cache
