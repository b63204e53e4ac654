// SiteRegistry: one pool's call sites and everything counted about them, in
// one place: written where each event happens, read as it is by snapshots.
//
// Counts that every lease makes (checkouts, hold time, nested reuses, the
// churn detector's loop state) live in per-thread tables: each thread writes
// only its own counters (relaxed load + store, no read-modify-write, no
// shared cache line), and a snapshot sums the tables. A table holds chunks of
// kChunk sites, allocated the first time its thread reports a site of the
// chunk, so a thread that uses a few sites costs a few kilobytes whatever
// max_sites is; when the thread exits its counts are folded into the
// totals and the table is recycled, so a snapshot's counters only grow.
// Rare events (connections opened, timeouts, leaks) and the leases-out gauge
// are shared atomics per site. A thread-local direct-mapped cache maps a
// source_location (by the addresses of its strings and its line) to the
// thread's counters, so a hit neither locks nor allocates; a miss interns
// the site under the mutex. Past max_sites, new sites fold into "other".
//
// The class is thread-safe. No concurrent call to any API of this type causes
// a data race.

#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "poolscope/base/mutex.h"
#include "poolscope/base/source_location.h"
#include "poolscope/tracing/site_stats.h"
#include "poolscope/tracing/stack_trace.h"

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

// One thread's counters for one site. The atomics are written by that
// thread only (or under the registry's mutex once it is gone) and read by
// snapshots; the loop state is the thread's alone. What every checkin
// touches comes first, on one cache line.
struct alignas(64) SiteCounters {
  std::atomic<std::uint64_t> checkouts{0};  // counted when the lease comes back
  std::atomic<std::uint64_t> hold_ns{0};
  std::atomic<std::uint64_t> max_hold_ns{0};
  // The churn detector's state of this thread at this site: a checkout
  // before loop_until_ns continues the loop of `run` checkouts. Checkout
  // times are steady-clock readings, after boot, so kNoLoop continues none.
  static constexpr std::int64_t kNoLoop = 0;
  std::int64_t loop_until_ns = kNoLoop;
  std::uint64_t run = 0;
  std::atomic<std::uint64_t> reuses{0};  // nested acquires made at this site
  // Loops of churn_loop checkouts or more: how many, the latest one's
  // length (which grows while it goes on), the longest one's.
  std::atomic<std::uint64_t> loops{0};
  std::atomic<std::uint64_t> last_loop{0};
  std::atomic<std::uint64_t> longest_loop{0};

  void reset() noexcept;
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

// A call site's identity. In libstdc++ a source_location is one pointer to a
// static record the compiler emits per call site, so its bits identify the
// site and one compare finds it. Elsewhere: the file name's address and the
// line.
struct SiteKey {
  std::uintptr_t a;
  std::uintptr_t b;  // always 0 where a source_location is one pointer
  bool operator==(const SiteKey& o) const noexcept {
    if constexpr (sizeof(poolscope::source_location) == sizeof(std::uintptr_t)) {
      return a == o.a;
    } else {
      return a == o.a && b == o.b;
    }
  }
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
// In a static library the initial-exec model makes it one %fs-relative
// access instead of a call to __tls_get_addr (which a shared library needs,
// in case it is dlopen()ed).
struct SiteCacheEntry {
  std::uint64_t registry;
  SiteKey key;
  SiteCounters* counters;
};
inline constexpr std::size_t kSiteCacheSize = 256;
#if POOLSCOPE_TLS_INITIAL_EXEC
#define POOLSCOPE_SITE_CACHE_TLS __attribute__((tls_model("initial-exec")))
#else
#define POOLSCOPE_SITE_CACHE_TLS
#endif
extern constinit thread_local SiteCacheEntry t_site_cache[kSiteCacheSize] POOLSCOPE_SITE_CACHE_TLS;

inline std::size_t site_cache_slot(const SiteKey& key) noexcept {
  // The records a compiler emits for call sites are 8-aligned and a few
  // words apart: their address bits above the alignment spread well enough.
  return static_cast<std::size_t>((key.a >> 3) ^ key.b) & (kSiteCacheSize - 1);
}

// What the churn detector reads of one site, over the threads: loops, the
// sum of each thread's latest loop (which grows while a loop goes on), and
// the longest loop.
struct LoopCounts {
  std::uint64_t loops = 0;
  std::uint64_t latest_sum = 0;
  std::uint64_t longest = 0;
};

class SiteRegistry : public std::enable_shared_from_this<SiteRegistry> {
 public:
  // Sites per chunk of a counter table.
  static constexpr std::size_t kChunk = 64;

  // REQUIRES: max_sites >= 1. Create with std::make_shared.
  explicit SiteRegistry(std::size_t max_sites);
  ~SiteRegistry();

  // The calling thread's counters for site in the registry with id
  // `registry`, if its cache holds them: a few instructions, inline, no
  // lock. Null on a miss; counters() then finds them. The entry's counters
  // are valid while the registry lives.
  static const SiteCacheEntry* cached(std::uint64_t registry,
                                      const poolscope::source_location& site) noexcept {
    const SiteKey key = key_of(site);
    const SiteCacheEntry& e = t_site_cache[site_cache_slot(key)];
    return e.registry == registry && e.key == key ? &e : nullptr;
  }

  // The calling thread's counters for site, interning the site on first
  // sight and giving the thread a counter table on its first report.
  SiteCounters& counters(const poolscope::source_location& site) {
    if (const SiteCacheEntry* e = cached(id_, site)) [[likely]] {
      return *e->counters;
    }
    return counters_slow(site);
  }

  // site's index (max_sites() for "other"), interning it on first sight;
  // touches no thread table.
  std::uint32_t index_of(const poolscope::source_location& site);

  // Rare events, counted per site in shared atomics.
  void add_opened(std::uint32_t index) noexcept;
  void add_timeout(std::uint32_t index) noexcept;
  void add_leak(std::uint32_t index) noexcept;
  // The leases out now, per site index (the rest: none), as the tracer last
  // saw them.
  void set_active(const std::unordered_map<std::uint32_t, std::uint64_t>& active) noexcept;

  // A loop of churn_loop checkouts at site was seen on thread `thread`:
  // remembered, with its stack when one was captured, for the churn report
  // (the first one since the last take_loop()).
  void note_loop(const poolscope::source_location& site, std::uint64_t thread,
                 const StackTrace& stack);
  struct Loop {
    poolscope::source_location site;
    std::uint64_t thread;
    StackTrace stack;  // empty unless stacks are captured
  };
  // The loop noted first at index since the last call, if any.
  std::optional<Loop> take_loop(std::uint32_t index);

  // "file:function():line" of an interned site ("other" for the fold).
  std::string name(std::uint32_t index) const;

  // Every named site by index, then "other". Counters only grow from one
  // snapshot to the next.
  std::vector<SiteStats> snapshot() const;
  // Checkouts per named site by index, then "other" last (cheaper than
  // snapshot(), for the churn rate option).
  std::vector<std::uint64_t> checkouts() const;
  // Loop counts per named site by index, then "other" last.
  std::vector<LoopCounts> loop_counts() const;
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
  [[gnu::noinline, gnu::cold]] SiteCounters& counters_slow(const poolscope::source_location& site);
  std::uint32_t intern_locked(const poolscope::source_location& site) POOLSCOPE_REQUIRES(mu_);
  CounterTable* thread_table_locked() POOLSCOPE_REQUIRES(mu_);
  template <class F>
  void for_each_counters_locked(std::uint32_t index, F&& f) const POOLSCOPE_REQUIRES(mu_);
  SiteStats stats_locked(std::uint32_t index) const POOLSCOPE_REQUIRES(mu_);
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
  // Loops noted and not yet taken, by site index.
  std::unordered_map<std::uint32_t, Loop> loops_ POOLSCOPE_GUARDED_BY(mu_);
};

}  // namespace poolscope::tracing::detail
