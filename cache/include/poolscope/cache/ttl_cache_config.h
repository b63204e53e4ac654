// TtlCache's configuration, and the small types of its API: the keys that
// prefix and glob invalidation accept, and what warm() reports.
//
// Plain value types.

#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "poolscope/cache/clock.h"

namespace poolscope::cache {

struct TtlCacheConfig {
  // Label in stats and metrics.
  std::string name = "cache";
  // How long an entry lives unless put() or get_or_load() says otherwise.
  // Zero: entries never expire. Past about 290 years: never, too.
  std::chrono::milliseconds ttl{5 * 60'000};
  // Entries kept at most; past it, entries not read since they were last
  // passed over go first (CLOCK, an approximation of LRU). At least 1.
  std::size_t max_entries = 10'000;
  // Independent parts; a power of two from 1 to 1024.
  std::size_t shards = 16;
  // Null: default_clock().
  std::shared_ptr<CacheClock> clock{};

  // Throws std::invalid_argument naming the first invalid field and its value.
  void validate() const;
};

// Keys the string-only operations (prefix and glob invalidation) accept.
template <class K>
concept StringKey = std::convertible_to<const K&, std::string_view>;

// What warm() did, key by key.
struct WarmResult {
  std::size_t loaded = 0;       // keys loaded now
  std::size_t present = 0;      // keys already cached
  std::size_t in_progress = 0;  // keys another thread was loading: left to that load
  std::size_t failed = 0;       // keys whose loader threw
};

}  // namespace poolscope::cache
