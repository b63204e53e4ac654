// CacheStats: one snapshot of a cache's counters, the same for every cache
// type (TtlCache, InstanceCache, SettingsCache).

#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace poolscope::cache {

struct CacheStats {
  std::string name;

  std::uint64_t hits = 0;
  std::uint64_t misses = 0;               // including callers that waited on another's load
  std::uint64_t loads = 0;                // loader runs that succeeded
  std::uint64_t load_failures = 0;        // loader runs that threw
  std::chrono::nanoseconds load_time{0};  // total, successes and failures

  // Entries removed, by why.
  std::uint64_t evictions_capacity = 0;     // past max_entries (CLOCK: unread first)
  std::uint64_t evictions_ttl = 0;          // expired
  std::uint64_t evictions_invalidated = 0;  // erase, prefix/glob invalidation, clear

  std::uint64_t entries = 0;
  std::uint64_t approximate_bytes = 0;

  // Pool checkouts that hits made unnecessary: each hit counts what loading
  // its entry cost in checkouts (see sessions.h).
  std::uint64_t sessions_avoided = 0;

  double hit_ratio() const noexcept {
    const std::uint64_t total = hits + misses;
    return total == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(total);
  }
};

}  // namespace poolscope::cache
