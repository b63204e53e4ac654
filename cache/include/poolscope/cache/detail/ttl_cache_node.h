// TtlCache's small types: an entry (Node), a running load (Flight), a
// lookup's key and hash (Probe), and the two halves of dependency tracking
// (the Dependent an entry is known by, and the frame its load records into).
// Included by ttl_cache.h only.

#pragma once

#include <atomic>
#include <condition_variable>
#include <exception>

namespace poolscope::cache {
namespace detail {

// What a hit counts, per reader slot.
struct ReaderCounts {
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  std::uint64_t sessions_avoided = 0;
};

}  // namespace detail

// A key and its hash (hash_of), computed once per call.
template <class K, class V, class Hash, class Eq>
template <class Q>
struct TtlCache<K, V, Hash, Eq>::Probe {
  const Q& key;
  std::size_t hash;
};

// An entry. Hits read the first group under the shared lock; the rest, and
// any change, is for the exclusive lock.
template <class K, class V, class Hash, class Eq>
struct TtlCache<K, V, Hash, Eq>::Node {
  // Marks that hits set (both at once, and only when not both set already):
  // read since the CLOCK hand last passed, and since the entry was loaded
  // (for background refresh). Only the exclusive holder clears them.
  static constexpr std::uint8_t kReferenced = 1, kReadSinceLoad = 2, kRead = 3;

  Node(std::size_t h, const K& k, const V& v) : hash(h), key(k), value(v) {}

  std::size_t hash;
  Node* chain = nullptr;  // the next node of the bucket
  const K key;
  TimePoint expires{};  // TimePoint::max(): never
  V value;
  std::uint64_t cost = 0;  // sessions a hit avoids
  // Set by readers sharing the lock, hence atomic; relaxed, because only
  // the exclusive holder acts on them, and taking the lock orders them.
  mutable std::atomic<std::uint8_t> marks{0};

  TimePoint loaded{};
  std::uint64_t generation = 0;  // of the load (or put) that made this value
  std::size_t bytes = 0;
  Node* prev = nullptr;  // the eviction list
  Node* next = nullptr;
  // What the entries its load read know it by (null: it read none).
  std::shared_ptr<detail::Dependent> dependent;
};

// A load running for a key; guarded by its shard's lock.
template <class K, class V, class Hash, class Eq>
struct TtlCache<K, V, Hash, Eq>::Flight {
  std::condition_variable_any done_cv;  // waited on with the shard's exclusive lock
  std::uint64_t generation = 0;
  bool done = false;
  bool stale = false;  // invalidated while loading: not cached
  std::optional<V> value;
  std::exception_ptr error;
  std::uint64_t cost = 0;
  Nanos lifetime{0};  // how long the value may live (zero: no limit)
};

// An entry of this cache (or its running load) as the entries its load read
// know it: invalidating it evicts the entry, if it is still the one of that
// generation and the cache still exists.
template <class K, class V, class Hash, class Eq>
struct TtlCache<K, V, Hash, Eq>::DependentEntry final : detail::Dependent {
  DependentEntry(TtlCache& c, const K& k, std::size_t h, std::uint64_t g)
      : cache(c), alive(c.watch()), key(k), hash(h), generation(g) {}

  void invalidate() noexcept override {
    if (const auto guard = alive.lock()) cache.evict_dependent(key, hash, generation);
  }

  TtlCache& cache;
  const poolscope::detail::Lifeline::Watch alive;
  const K key;
  const std::size_t hash;
  const std::uint64_t generation;
};

// The frame a load runs in: entries the loader reads record its Dependent,
// made on the first read.
template <class K, class V, class Hash, class Eq>
class TtlCache<K, V, Hash, Eq>::LoadRecorder final : public detail::LoadFrame {
 public:
  LoadRecorder(TtlCache& cache, const Probe<K>& probe, std::uint64_t generation) noexcept
      : cache_(cache), probe_(probe), generation_(generation) {}

  const std::shared_ptr<detail::Dependent>& dependent() override {
    if (dependent_ == nullptr) {
      dependent_ = std::make_shared<DependentEntry>(cache_, probe_.key, probe_.hash, generation_);
    }
    return dependent_;
  }

  // For the entry the load makes.
  std::shared_ptr<detail::Dependent> take_dependent() noexcept { return std::move(dependent_); }

 private:
  TtlCache& cache_;
  const Probe<K>& probe_;
  const std::uint64_t generation_;
  std::shared_ptr<detail::Dependent> dependent_;
};

}  // namespace poolscope::cache
