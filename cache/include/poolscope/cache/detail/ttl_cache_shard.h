// TtlCache's shard: its hash table, eviction list, running loads and the
// dependents of its keys. Included by ttl_cache.h only.
//
// Invariants, under the shard's exclusive lock: every node of `table` is in
// the eviction list exactly once; `bytes` is the sum of the nodes' sizes;
// `flights` holds at most one running load per key, and a load that an
// invalidation, a put or a reload superseded is marked stale and removed
// from it (detach_flight). A flight leaves `flights` and is marked done, with
// a value or an error, exactly once (end_flight), however its load ends.
// `dependents` maps a key to the Dependents of the loads that read it since
// it was last invalidated, whether or not it is cached now.
//
// A hit takes the shard's lock shared (the reader's own CPU slot), so hits
// write no line another core reads: they count into their slot and set the
// node's marks only when they are not set. Everything that changes the
// table or the list takes the lock exclusively. Eviction is CLOCK (second
// chance) over the list: the node at the tail goes unless it was read since
// the hand last passed it, in which case it moves to the front, unmarked.
// That orders entries as LRU does where it matters (an entry read since its
// insertion outlives one that was not) without a hit having to move anything.

#pragma once

#include <algorithm>
#include <memory>
#include <unordered_map>
#include <vector>

#include "poolscope/cache/detail/shard_mutex.h"
#include "poolscope/cache/detail/shard_table.h"

namespace poolscope::cache {

template <class K, class V, class Hash, class Eq>
struct alignas(64) TtlCache<K, V, Hash, Eq>::Shard {
  using Mutex = detail::ShardMutex<detail::ReaderCounts>;
  using WriterLock = poolscope::detail::BasicMutexLock<Mutex>;
  using ReaderLock = typename Mutex::ReaderLock;
  using Flights = std::unordered_map<K, std::shared_ptr<Flight>, Hash, Eq>;
  using Dependents = std::unordered_map<K, detail::DependentList, Hash, Eq>;
  // What insert() stores beside the value.
  struct Entry {
    TimePoint expires;
    TimePoint loaded;
    std::uint64_t cost;
    std::uint64_t generation;
    std::shared_ptr<detail::Dependent> dependent;
  };

  mutable Mutex mu;
  detail::ShardTable<Node> table POOLSCOPE_GUARDED_BY(mu);
  Flights flights POOLSCOPE_GUARDED_BY(mu);
  Dependents dependents POOLSCOPE_GUARDED_BY(mu);
  std::size_t sweep_dependents_at POOLSCOPE_GUARDED_BY(mu) = 64;
  Node* head POOLSCOPE_GUARDED_BY(mu) = nullptr;  // the most recently inserted or promoted
  Node* tail POOLSCOPE_GUARDED_BY(mu) = nullptr;  // where the clock hand looks first
  std::uint64_t bytes POOLSCOPE_GUARDED_BY(mu) = 0;
  std::uint64_t next_generation POOLSCOPE_GUARDED_BY(mu) = 1;
  CacheStats counts POOLSCOPE_GUARDED_BY(mu);  // what writers count; readers count in their slots
  std::size_t capacity = 0;                    // constant once the cache is constructed

  template <class Q>
  Node* find(const Probe<Q>& p) const POOLSCOPE_REQUIRES_SHARED(mu) {
    return table.find(p.hash, [&p](const Node& n) { return key_equals(n.key, p.key); });
  }
  // Eq, but byte strings under the default Eq compare inline (equal_bytes).
  template <class Q>
  static bool key_equals(const K& stored, const Q& key) {
    if constexpr (std::is_same_v<Eq, std::equal_to<>> && StringKey<K> &&
                  std::is_convertible_v<const Q&, std::string_view>) {
      return equal_bytes(stored, key);
    } else {
      return Eq{}(stored, key);
    }
  }
  // The live node for key, or null (an expired one is dropped).
  template <class Q>
  Node* find_live(const Probe<Q>& key, TimePoint now) POOLSCOPE_REQUIRES(mu) {
    Node* n = find(key);
    if (n == nullptr || n->expires > now) return n;
    remove(*n);
    ++counts.evictions_ttl;
    return nullptr;
  }
  // Counts a hit on n in hits/sessions (a reader's slot or the shard's) and
  // marks n read; a reader writes the marks only when they are not set.
  static void count_hit(const Node& n, std::uint64_t& hits, std::uint64_t& sessions) noexcept {
    if (n.marks.load(std::memory_order_relaxed) != Node::kRead) {
      n.marks.store(Node::kRead, std::memory_order_relaxed);
    }
    ++hits;
    sessions += n.cost;
    detail::credit_sessions_avoided(n.cost);
  }
  void count_hit(const Node& n) POOLSCOPE_REQUIRES(mu) {
    count_hit(n, counts.hits, counts.sessions_avoided);
  }

  void unlink(Node& n) noexcept POOLSCOPE_REQUIRES(mu) {
    (n.prev != nullptr ? n.prev->next : head) = n.next;
    (n.next != nullptr ? n.next->prev : tail) = n.prev;
    n.prev = n.next = nullptr;
  }
  void link_front(Node& n) noexcept POOLSCOPE_REQUIRES(mu) {
    n.prev = nullptr;
    n.next = head;
    (head != nullptr ? head->prev : tail) = &n;
    head = &n;
  }
  // Takes n out; the caller destroys it (outside the lock, where it can).
  std::unique_ptr<Node> remove(Node& n) noexcept POOLSCOPE_REQUIRES(mu) {
    unlink(n);
    bytes -= n.bytes;
    return table.extract(n);
  }

  // Supersedes the running load of key, if any: marked stale, its result
  // goes to its waiters but not into the table, and the next miss starts a
  // new load.
  void detach_flight(const K& key) POOLSCOPE_REQUIRES(mu) {
    if (auto it = flights.find(key); it != flights.end()) detach_flight(it);
  }
  typename Flights::iterator detach_flight(typename Flights::iterator it) POOLSCOPE_REQUIRES(mu) {
    it->second->stale = true;
    return flights.erase(it);
  }
  // Ends flight f of key: done (REQUIRES: with a value or an error), out of
  // `flights` unless superseded already, its waiters woken.
  void end_flight(const K& key, Flight& f) noexcept POOLSCOPE_REQUIRES(mu) {
    f.done = true;
    if (auto it = flights.find(key); it != flights.end() && it->second.get() == &f) {
      flights.erase(it);
    }
    f.done_cv.notify_all();
  }

  // Records that d read key.
  void add_dependent(const K& key, const std::shared_ptr<detail::Dependent>& d)
      POOLSCOPE_REQUIRES(mu) {
    auto it = dependents.find(key);
    if (it == dependents.end()) {
      if (dependents.size() >= sweep_dependents_at) sweep_dependents();
      it = dependents.emplace(key, detail::DependentList{}).first;
    }
    detail::add_dependent(it->second, d);
  }
  // Drops the keys none of whose dependents exist, now and then (the lists
  // would otherwise keep every key any load ever read).
  void sweep_dependents() POOLSCOPE_REQUIRES(mu) {
    std::erase_if(dependents, [](const auto& entry) { return detail::all_gone(entry.second); });
    sweep_dependents_at = std::max<std::size_t>(64, 2 * dependents.size());
  }
  // Appends the dependents of key to out: they are to be invalidated.
  void take_dependents(const K& key, detail::DependentList& out) POOLSCOPE_REQUIRES(mu) {
    const auto it = dependents.find(key);
    if (it == dependents.end()) return;
    if (out.empty()) {
      out = std::move(it->second);
    } else {
      out.insert(out.end(), it->second.begin(), it->second.end());
    }
    dependents.erase(it);
  }
  // Invalidates key: its load, its node (into gone) and its dependents
  // (into fired). Returns whether a node was removed.
  bool invalidate_key(const Probe<K>& key, std::vector<std::unique_ptr<Node>>& gone,
                      detail::DependentList& fired) POOLSCOPE_REQUIRES(mu) {
    detach_flight(key.key);
    take_dependents(key.key, fired);
    Node* n = find(key);
    if (n == nullptr) return false;
    gone.push_back(remove(*n));
    ++counts.evictions_invalidated;
    return true;
  }

  // Buckets of what scan() walks, and a walk of some: f(const K&, const
  // Node*) for each key of buckets [first, last) (an entry's with its node,
  // a dependents' key with null). Returns where it stopped.
  std::size_t bucket_count(ScanPart part) const POOLSCOPE_REQUIRES_SHARED(mu) {
    return part == ScanPart::kEntries ? table.bucket_count() : dependents.bucket_count();
  }
  template <class F>
  std::size_t visit_buckets(ScanPart part, std::size_t first, std::size_t last, F& f) const
      POOLSCOPE_REQUIRES_SHARED(mu) {
    if (part == ScanPart::kEntries) {
      return table.for_each_in(first, last, [&f](const Node& n) { f(n.key, &n); });
    }
    last = std::min(last, dependents.bucket_count());
    for (std::size_t b = first; b < last; ++b) {
      for (auto it = dependents.cbegin(b); it != dependents.cend(b); ++it) f(it->first, nullptr);
    }
    return last;
  }

  // Removes one node: the first from the tail not read since the hand
  // passed it. REQUIRES: the table is not empty.
  void evict_one() POOLSCOPE_REQUIRES(mu) {
    while ((tail->marks.load(std::memory_order_relaxed) & Node::kReferenced) != 0) {
      Node& n = *tail;
      n.marks.store(n.marks.load(std::memory_order_relaxed) & Node::kReadSinceLoad,
                    std::memory_order_relaxed);
      unlink(n);
      link_front(n);
    }
    remove(*tail);  // destroyed here: eviction happens inside an insert
    ++counts.evictions_capacity;
  }
  // Caches value for key (replacing its node's value, if it has one).
  void insert(const Probe<K>& key, const V& value, Entry e) POOLSCOPE_REQUIRES(mu) {
    Node* n = find(key);
    if (n == nullptr) {
      // Make room first, so the new node is never the one evicted.
      while (!table.empty() && table.size() >= capacity) evict_one();
      auto fresh = std::make_unique<Node>(key.hash, key.key, value);
      n = fresh.get();
      table.insert(std::move(fresh));
    } else {
      n->value = value;  // first: if copying throws, the node is unchanged
      bytes -= n->bytes;
      unlink(*n);
      n->marks.store(0, std::memory_order_relaxed);
    }
    link_front(*n);
    n->expires = e.expires;
    n->loaded = e.loaded;
    n->cost = e.cost;
    n->generation = e.generation;
    n->dependent = std::move(e.dependent);
    n->bytes = sizeof(Node) + sizeof(void*) + approximate_bytes(n->key) + approximate_bytes(value);
    bytes += n->bytes;
  }
};

}  // namespace poolscope::cache
