// SiteRegistry: interns call sites and keeps their statistics, built so a
// traced checkout costs a thread-local lookup and a few plain stores.
//
// Every thread that reports to a registry gets its own table of counters,
// written only by that thread (relaxed load + store, no read-modify-write, no
// shared cache line). A table holds chunks of kChunk sites, allocated the
// first time the thread reports a site in the chunk, so a thread that uses a
// few sites costs a few kilobytes whatever max_sites is. Snapshots sum the
// tables; a thread's table is folded into the totals and recycled when it
// exits, so a snapshot's counts only grow. A thread-local direct-mapped cache
// maps a poolscope::source_location (by the addresses of its strings and its line)
// to the thread's counters, so a hit neither locks nor allocates; a miss
// interns the site under the mutex. Past max_sites, new sites fold into
// "other".
//
// The class is thread-safe. No concurrent call to any API of this type causes
// a data race.

#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "poolscope/base/mutex.h"
#include "poolscope/base/source_location.h"
#include "poolscope/tracing/site_stats.h"

namespace poolscope::tracing::detail {

using poolscope::detail::Mutex;
using poolscope::detail::MutexLock;

// Single-writer increment: a plain load and store, no locked instruction.
inline void bump(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) noexcept {
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

inline void raise_max(std::atomic<std::uint64_t>& counter, std::uint64_t value) noexcept {
  if (value > counter.load(std::memory_order_relaxed)) {
    counter.store(value, std::memory_order_relaxed);
  }
}

// The per-thread counters of a site, as values. += is the one place they are
// merged (summed, max_hold_ns maxed).
struct Counts {
  std::uint64_t acquires = 0;  // checkouts whose lease came back
  std::uint64_t reuses = 0;
  std::uint64_t hold_ns = 0;
  std::uint64_t max_hold_ns = 0;

  Counts& operator+=(const Counts& o) noexcept {
    acquires += o.acquires;
    reuses += o.reuses;
    hold_ns += o.hold_ns;
    max_hold_ns = std::max(max_hold_ns, o.max_hold_ns);
    return *this;
  }
};

// One thread's counters for one site. Written by that thread only (or under
// the registry's mutex once the thread is gone).
struct SiteCounters {
  std::atomic<std::uint64_t> acquires{0};
  std::atomic<std::uint64_t> reuses{0};
  std::atomic<std::uint64_t> hold_ns{0};
  std::atomic<std::uint64_t> max_hold_ns{0};

  Counts load() const noexcept {
    return {acquires.load(std::memory_order_relaxed), reuses.load(std::memory_order_relaxed),
            hold_ns.load(std::memory_order_relaxed), max_hold_ns.load(std::memory_order_relaxed)};
  }
  // REQUIRES: the caller is the only writer.
  void add(const Counts& c) noexcept {
    bump(acquires, c.acquires);
    bump(reuses, c.reuses);
    bump(hold_ns, c.hold_ns);
    raise_max(max_hold_ns, c.max_hold_ns);
  }
  void reset() noexcept {
    acquires.store(0, std::memory_order_relaxed);
    reuses.store(0, std::memory_order_relaxed);
    hold_ns.store(0, std::memory_order_relaxed);
    max_hold_ns.store(0, std::memory_order_relaxed);
  }
};

// Adds from's counts to into's (the name fields stay into's).
void merge(SiteStats& into, const SiteStats& from) noexcept;

// One thread's counters for every site it reported, in chunks of
// SiteRegistry::kChunk. Chunks are added (under the registry's mutex) and
// never move, so a cached SiteCounters* stays valid; only the owning thread
// writes the counters.
struct CounterTable {
  std::vector<std::unique_ptr<SiteCounters[]>> chunks;  // null: no site of the chunk reported

  // The counters of index, allocating its chunk.
  SiteCounters& at(std::size_t index);
  // The counters of index, or null if its chunk was never used.
  const SiteCounters* find(std::size_t index) const noexcept;
};

// A call site's identity. In libstdc++ a poolscope::source_location is one pointer
// to a static record the compiler emits per call site, so its bits identify
// the site and one compare finds it. Elsewhere: the file name's address and
// the line.
struct SiteKey {
  std::uintptr_t a;
  std::uintptr_t b;
  bool operator==(const SiteKey&) const = default;
};

inline SiteKey key_of(const poolscope::source_location& site) noexcept {
  if constexpr (sizeof(poolscope::source_location) == sizeof(std::uintptr_t)) {
    return {std::bit_cast<std::uintptr_t>(site), 0};
  } else {
    return {reinterpret_cast<std::uintptr_t>(site.file_name()), site.line()};
  }
}

// The thread-local cache in front of every registry: direct-mapped by site
// identity, tagged with the registry's id. constinit: no dynamic
// initialization, so other translation units read it without a TLS wrapper.
struct SiteCacheEntry {
  std::uint64_t registry;
  SiteKey key;
  std::uint32_t index;
  struct SiteCounters* counters;
};
inline constexpr std::size_t kSiteCacheSize = 256;
extern constinit thread_local SiteCacheEntry t_site_cache[kSiteCacheSize];

inline std::size_t site_cache_slot(const SiteKey& key) noexcept {
  const std::uint64_t h = (key.a ^ (key.b * 0x9E3779B97F4A7C15ull)) * 0x9E3779B97F4A7C15ull;
  return static_cast<std::size_t>(h >> 56) & (kSiteCacheSize - 1);
}

class SiteRegistry : public std::enable_shared_from_this<SiteRegistry> {
 public:
  // Sites per chunk of a counter table.
  static constexpr std::size_t kChunk = 64;

  // REQUIRES: max_sites >= 1. Create with std::make_shared.
  explicit SiteRegistry(std::size_t max_sites);
  ~SiteRegistry();

  struct Entry {
    std::uint32_t index;     // the site's index (max_sites for "other")
    SiteCounters* counters;  // the calling thread's counters for it
  };

  // The calling thread's entry for site, interning the site on first sight
  // and giving the thread a counter table on its first report. For threads
  // that count; a thread that only reads uses index_of(). A hit in the
  // thread's cache is a few instructions, inline.
  Entry lookup(const poolscope::source_location& site) {
    const SiteKey key = key_of(site);
    const SiteCacheEntry& e = t_site_cache[site_cache_slot(key)];
    if (e.registry == id_ && e.key == key) [[likely]] {
      return {e.index, e.counters};
    }
    return lookup_slow(site);
  }

  // site's index, interning it on first sight; touches no thread table.
  std::uint32_t index_of(const poolscope::source_location& site);

  // Rare events, counted per site in shared atomics.
  void add_opened(std::uint32_t index) noexcept;
  void add_timeout(std::uint32_t index) noexcept;
  void add_leak(std::uint32_t index) noexcept;

  // "file:function():line" of an interned site ("other" for the fold).
  std::string name(std::uint32_t index) const;
  // An interned site's name fields, with its counts at zero.
  SiteStats describe(std::uint32_t index) const;

  // Every named site by index, then "other". Counts only grow from one
  // snapshot to the next.
  std::vector<SiteStats> snapshot() const;
  // Acquires per named site by index, then "other" last (cheaper than
  // snapshot(), for churn sampling).
  std::vector<std::uint64_t> acquires() const;
  std::uint64_t folded() const;
  std::size_t max_sites() const noexcept { return max_sites_; }
  // Unique per process, never reused (unlike the registry's address).
  std::uint64_t id() const noexcept { return id_; }

  // Called by a thread's bindings when the thread exits.
  void retire(CounterTable* table) noexcept;

 private:
  struct Site;
  struct Key {
    const char* file;
    const char* function;
    std::uint32_t line;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const noexcept;
  };

  // Out of line and cold, so the inline hit path saves no registers for it.
  [[gnu::noinline, gnu::cold]] Entry lookup_slow(const poolscope::source_location& site);
  std::uint32_t intern_locked(const poolscope::source_location& site) POOLSCOPE_REQUIRES(mu_);
  CounterTable* thread_table_locked() POOLSCOPE_REQUIRES(mu_);
  Counts sum_locked(std::uint32_t index) const POOLSCOPE_REQUIRES(mu_);
  SiteStats describe_locked(std::uint32_t index) const POOLSCOPE_REQUIRES(mu_);
  Site& site(std::uint32_t index) const noexcept;
  Site& site_locked(std::uint32_t index) POOLSCOPE_REQUIRES(mu_);

  // Constant after construction.
  const std::uint64_t id_;  // unique per process, never reused
  const std::size_t max_sites_;
  const std::size_t chunks_;  // kChunk-site chunks covering max_sites_ + 1 indexes

  // The sites, by index: max_sites_ named ones, then "other", in chunks
  // allocated (under mu_) before the first index in them is handed out, so
  // the rare-event counters are reached without the lock. A site's name
  // fields are written once under mu_, its counters are atomics.
  const std::unique_ptr<std::atomic<Site*>[]> site_chunks_;

  // State below is protected by mu_.
  mutable Mutex mu_;
  std::vector<std::unique_ptr<Site[]>> site_storage_ POOLSCOPE_GUARDED_BY(mu_);
  std::uint32_t named_ POOLSCOPE_GUARDED_BY(mu_) = 0;  // sites interned so far
  std::unordered_map<Key, std::uint32_t, KeyHash> by_key_ POOLSCOPE_GUARDED_BY(mu_);
  std::unordered_map<std::string, std::uint32_t> by_name_ POOLSCOPE_GUARDED_BY(mu_);
  std::unordered_set<std::string> folded_ POOLSCOPE_GUARDED_BY(mu_);
  // Per-thread tables; live ones are summed, free ones are all zero.
  std::vector<std::unique_ptr<CounterTable>> tables_ POOLSCOPE_GUARDED_BY(mu_);
  std::vector<CounterTable*> free_tables_ POOLSCOPE_GUARDED_BY(mu_);
  // Counts of threads that exited, per site.
  std::unique_ptr<CounterTable> retired_ POOLSCOPE_GUARDED_BY(mu_);
};

}  // namespace poolscope::tracing::detail
