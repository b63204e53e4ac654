// The Redis tier's statistics: one snapshot per RedisTier, with a part per
// attached cache. Free of hiredis (target poolscope::cache_redis_stats), so
// that an exporter can read a tier through RedisTierStatsSource without
// linking hiredis itself.
//
// Every counter counts from the tier's construction and never goes down.
// Snapshots are plain values: safe to copy and read on any thread.

#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "poolscope/base/lifeline.h"

namespace poolscope::cache {

// Whether the tier calls Redis.
enum class RedisTierState {
  kUp,          // calls go to Redis
  kBackingOff,  // failure_threshold calls failed in a row: none go until the back-off ends
  kProbing,     // the back-off ended: one call tries Redis, the others still skip it
};

// "up", "backing_off", "probing": the label exporters and logs use.
const char* to_string(RedisTierState state) noexcept;

// Latency of Redis calls (one round trip each, whatever its outcome), as a
// histogram: counts[i] calls took at most bounds[i] (and more than
// bounds[i - 1]); counts.back() took longer than bounds.back(). Not
// cumulative: an exporter sums them up for Prometheus' le buckets.
struct RedisLatencyHistogram {
  static constexpr std::array<double, 12> kBoundsSeconds = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0};
  std::array<std::uint64_t, kBoundsSeconds.size() + 1> counts{};
  std::uint64_t count = 0;
  double sum_seconds = 0;
};

// One attached cache, as the tier saw its reads.
struct RedisCacheTierStats {
  std::string cache;  // the cache's name: its keys are {prefix}:{cache}:{key}

  // Tier "local": the process's own cache (its CacheStats, read when the
  // snapshot is taken; zero once that cache is gone).
  std::uint64_t local_hits = 0;
  std::uint64_t local_misses = 0;
  // Tier "redis": local misses that asked Redis. A hit found a value that
  // decoded; a miss found none, or one that did not decode.
  std::uint64_t redis_hits = 0;
  std::uint64_t redis_misses = 0;
  std::uint64_t decode_failures = 0;  // values in Redis the codec could not read (also misses)
  // Loads through the cache's loader (the database, usually), and of them
  // the ones made without Redis because it was unavailable (fallbacks).
  std::uint64_t loads = 0;
  std::uint64_t fallback_loads = 0;
  std::uint64_t stores = 0;  // loaded values written to Redis
  // Pool checkouts that Redis hits spared this process (the cost of the
  // load that stored the value; see poolscope/cache/sessions.h).
  std::uint64_t sessions_avoided = 0;

  // The load lock (SET NX PX): taken by this process to load; found taken,
  // so this process waited for another's value; waits that ended with
  // neither a value nor a lock (the holder died, overran lock_ttl or failed),
  // after which this process loaded itself.
  std::uint64_t lock_acquired = 0;
  std::uint64_t lock_waited = 0;
  std::uint64_t lock_expired = 0;

  // Invalidations this process sent to every process (key, prefix, glob or
  // clear), and the ones it received from others and applied locally.
  std::uint64_t invalidations_published = 0;
  std::uint64_t invalidations_received = 0;
};

struct RedisTierStats {
  std::string url;  // redacted: the password is "***"
  std::string prefix;
  RedisTierState state = RedisTierState::kUp;

  // Calls: every round trip to Redis, or attempted one.
  std::uint64_t calls = 0;
  // Calls that failed other than by running out of time: refused or broken
  // connections, failed authentication, error replies.
  std::uint64_t errors = 0;
  // Calls that ran out of time: a command, a connect, or the wait for a
  // free connection.
  std::uint64_t timeouts = 0;
  // Calls not made because the breaker was open (state kBackingOff).
  std::uint64_t skipped = 0;
  std::uint64_t breaker_opened = 0;  // times the tier went from up to backing off
  std::uint64_t breaker_closed = 0;  // times it came back up
  RedisLatencyHistogram latency;

  // The subscriber (the thread that receives other processes'
  // invalidations): whether it is subscribed now, how often it subscribed
  // (the first time included), and how often a subscription flushed local
  // caches that may have missed messages (caches attached, or links lost,
  // while it was not subscribed).
  bool subscriber_connected = false;
  std::uint64_t subscriber_connects = 0;
  std::uint64_t subscriber_flushes = 0;

  // Invalidations, every cache together; pending ones could not reach
  // Redis yet and are retried.
  std::uint64_t invalidations_published = 0;
  std::uint64_t invalidations_received = 0;
  std::uint64_t invalidations_pending = 0;

  std::vector<RedisCacheTierStats> caches;  // by name
};

// What an exporter needs from a tier (RedisTier implements it), without
// linking hiredis: read stats() only while a Guard from watch().lock() is
// true, and the tier may be destroyed at any moment on another thread.
class RedisTierStatsSource {
 public:
  virtual RedisTierStats stats() const = 0;
  virtual poolscope::detail::Lifeline::Watch watch() const = 0;

 protected:
  ~RedisTierStatsSource() = default;
};

}  // namespace poolscope::cache
