// The Redis tiers' families. Names: poolscope_redis_*, every series
// labelled by the tier's prefix and pool; per attached cache also by cache.
// A tier's series exist from the moment it is added, at zero (its caches'
// from when they are attached). grafana/dashboard.json reads these names.

#include "redis_families.h"

#if POOLSCOPE_EXPORTERS_WITH_REDIS

#include <algorithm>
#include <exception>
#include <stdexcept>

#include "poolscope/base/error.h"
#include "poolscope/cache/redis/redis_stats.h"
#include "poolscope/exporters/metrics_collector.h"

namespace poolscope::exporters {

void MetricsCollector::add_redis_tier(const cache::RedisTierStatsSource& tier, std::string pool) {
  poolscope::detail::Lifeline::Watch watch = tier.watch();
  std::string prefix;
  {
    const poolscope::detail::Lifeline::Guard alive = watch.lock();
    if (!alive) return;  // being destroyed: nothing to report
    prefix = tier.stats().prefix;
  }
  detail::CollectorState::Pruned gone;
  poolscope::detail::MutexLock lock(state_->mu);
  gone = state_->prune();
  for (const auto& t : state_->tiers) {
    if (t.tier == &tier) return;
    const poolscope::detail::Lifeline::Guard other = t.watch.lock();
    if (other && t.pool == pool && t.tier->stats().prefix == prefix) {
      throw std::invalid_argument("MetricsCollector::add_redis_tier: a tier with prefix '" +
                                  prefix + "' and pool '" + pool + "' is already added");
    }
  }
  state_->tiers.push_back({&tier, std::move(pool), std::move(watch)});
}

void MetricsCollector::remove_redis_tier(const cache::RedisTierStatsSource& tier) {
  poolscope::detail::MutexLock lock(state_->mu);
  std::erase_if(state_->tiers, [&](const auto& t) { return t.tier == &tier; });
}

}  // namespace poolscope::exporters

namespace poolscope::exporters::detail {
namespace {

double number(std::uint64_t n) { return static_cast<double>(n); }

// Non-cumulative counts (RedisLatencyHistogram) as Prometheus' le buckets.
void add_latency(FamilyBuilder& out, const Labels& labels, const cache::RedisLatencyHistogram& h) {
  static const std::vector<double> kBounds(cache::RedisLatencyHistogram::kBoundsSeconds.begin(),
                                           cache::RedisLatencyHistogram::kBoundsSeconds.end());
  Snapshot::Histogram histogram{&kBounds, {}};
  std::uint64_t running = 0;
  for (std::size_t i = 0; i < kBounds.size(); ++i) {
    running += h.counts[i];
    histogram.counts.cumulative.push_back(running);
  }
  // +Inf is the count itself: the largest bucket holds every call.
  histogram.counts.count = std::max(h.count, running + h.counts.back());
  histogram.counts.sum_seconds = h.sum_seconds;
  out.histogram("poolscope_redis_call_seconds",
                "Time of one Redis call (a round trip, whatever its outcome).", labels, histogram);
}

void add_cache_tier_families(FamilyBuilder& out, const Labels& tier,
                             const cache::RedisCacheTierStats& c) {
  const Labels labels = with(tier, "cache", c.cache);
  const std::string req_help =
      "Reads of a cache on the Redis tier, by tier (local: the process's cache; redis: local "
      "misses that asked Redis) and result.";
  const auto request = [&](const char* level, const char* result, std::uint64_t n) {
    out.counter("poolscope_redis_requests_total", req_help,
                with(with(labels, "tier", level), "result", result), number(n));
  };
  request("local", "hit", c.local_hits);
  request("local", "miss", c.local_misses);
  request("redis", "hit", c.redis_hits);
  request("redis", "miss", c.redis_misses);
  out.counter("poolscope_redis_decode_failures_total",
              "Values in Redis the cache's codec could not read (counted as misses).", labels,
              number(c.decode_failures));
  out.counter("poolscope_redis_loads_total",
              "Loads through the cache's loader (the database, usually) on a miss in Redis too.",
              labels, number(c.loads));
  out.counter("poolscope_redis_fallback_loads_total",
              "Loads made without Redis because it was unavailable.", labels,
              number(c.fallback_loads));
  out.counter("poolscope_redis_stores_total", "Loaded values written to Redis.", labels,
              number(c.stores));
  out.counter("poolscope_redis_sessions_avoided_total",
              "Pool checkouts that Redis hits spared this process.", labels,
              number(c.sessions_avoided));
  const std::string lock_help =
      "The load lock (SET NX PX), by outcome: acquired (this process loaded), waited (for "
      "another process's value), expired (the wait ended with no value; this process loaded).";
  out.counter("poolscope_redis_lock_total", lock_help, with(labels, "outcome", "acquired"),
              number(c.lock_acquired));
  out.counter("poolscope_redis_lock_total", lock_help, with(labels, "outcome", "waited"),
              number(c.lock_waited));
  out.counter("poolscope_redis_lock_total", lock_help, with(labels, "outcome", "expired"),
              number(c.lock_expired));
  const std::string inv_help =
      "Invalidations of the cache: published (sent to every process) or received (from another "
      "process, applied here).";
  out.counter("poolscope_redis_invalidations_total", inv_help,
              with(labels, "direction", "published"), number(c.invalidations_published));
  out.counter("poolscope_redis_invalidations_total", inv_help,
              with(labels, "direction", "received"), number(c.invalidations_received));
}

}  // namespace

void read_tiers(const CollectorState& state, Snapshot& snap) {
  for (const CollectorState::TierEntry& t : state.tiers) {
    try {
      // Held while stats() runs: the tier's destructor waits for it.
      const poolscope::detail::Lifeline::Guard alive = t.watch.lock();
      if (!alive) continue;  // the tier is being destroyed
      snap.tiers.push_back(
          {t.pool, std::make_shared<const cache::RedisTierStats>(t.tier->stats())});
    } catch (...) {
      snap.errors.push_back("redis tier: " + exception_text(std::current_exception()));
    }
  }
}

void add_tier_families(FamilyBuilder& out, const Snapshot::TierEntry& entry) {
  const cache::RedisTierStats& s = *entry.stats;
  const Labels tier{{"prefix", s.prefix}, {"pool", entry.pool}};
  for (const cache::RedisTierState state :
       {cache::RedisTierState::kUp, cache::RedisTierState::kBackingOff,
        cache::RedisTierState::kProbing}) {
    out.gauge("poolscope_redis_state",
              "1 for the tier's state now: up (calls go to Redis), backing_off (the breaker is "
              "open: no calls), probing (one call tries Redis).",
              with(tier, "state", cache::to_string(state)), s.state == state ? 1 : 0);
  }
  out.counter("poolscope_redis_calls_total", "Redis calls made or attempted.", tier,
              number(s.calls));
  const std::string err_help =
      "Redis calls that failed, by kind: error (refused or broken connection, failed "
      "authentication, error reply) or timeout (the call, a connect, or the wait for a free "
      "connection ran out of time).";
  out.counter("poolscope_redis_errors_total", err_help, with(tier, "kind", "error"),
              number(s.errors));
  out.counter("poolscope_redis_errors_total", err_help, with(tier, "kind", "timeout"),
              number(s.timeouts));
  out.counter("poolscope_redis_skipped_total", "Calls not made because the breaker was open.", tier,
              number(s.skipped));
  const std::string br_help = "Breaker changes: opened (up to backing_off), closed (back up).";
  out.counter("poolscope_redis_breaker_total", br_help, with(tier, "change", "opened"),
              number(s.breaker_opened));
  out.counter("poolscope_redis_breaker_total", br_help, with(tier, "change", "closed"),
              number(s.breaker_closed));
  add_latency(out, tier, s.latency);
  out.gauge("poolscope_redis_subscriber_connected",
            "1 while the subscriber (other processes' invalidations) is subscribed.", tier,
            s.subscriber_connected ? 1 : 0);
  out.counter("poolscope_redis_subscriber_connects_total",
              "Times the subscriber subscribed, the first included.", tier,
              number(s.subscriber_connects));
  out.counter("poolscope_redis_subscriber_flushes_total",
              "Local cache flushes after the subscriber may have missed messages.", tier,
              number(s.subscriber_flushes));
  out.gauge("poolscope_redis_invalidations_pending",
            "Invalidations that could not reach Redis yet and are retried.", tier,
            number(s.invalidations_pending));
  for (const cache::RedisCacheTierStats& c : s.caches) add_cache_tier_families(out, tier, c);
}

nlohmann::json tiers_json(const Snapshot& snap) {
  nlohmann::json tiers = nlohmann::json::array();
  for (const Snapshot::TierEntry& t : snap.tiers) {
    const cache::RedisTierStats& s = *t.stats;
    nlohmann::json caches = nlohmann::json::array();
    for (const cache::RedisCacheTierStats& c : s.caches) {
      caches.push_back({{"cache", c.cache},
                        {"local_hits", c.local_hits},
                        {"local_misses", c.local_misses},
                        {"redis_hits", c.redis_hits},
                        {"redis_misses", c.redis_misses},
                        {"decode_failures", c.decode_failures},
                        {"loads", c.loads},
                        {"fallback_loads", c.fallback_loads},
                        {"stores", c.stores},
                        {"sessions_avoided", c.sessions_avoided},
                        {"lock_acquired", c.lock_acquired},
                        {"lock_waited", c.lock_waited},
                        {"lock_expired", c.lock_expired},
                        {"invalidations_published", c.invalidations_published},
                        {"invalidations_received", c.invalidations_received}});
    }
    tiers.push_back({{"prefix", s.prefix},
                     {"pool", t.pool},
                     {"url", s.url},  // redacted by the tier
                     {"state", cache::to_string(s.state)},
                     {"calls", s.calls},
                     {"errors", s.errors},
                     {"timeouts", s.timeouts},
                     {"skipped", s.skipped},
                     {"breaker_opened", s.breaker_opened},
                     {"breaker_closed", s.breaker_closed},
                     {"call_count", s.latency.count},
                     {"call_seconds_total", s.latency.sum_seconds},
                     {"subscriber_connected", s.subscriber_connected},
                     {"subscriber_connects", s.subscriber_connects},
                     {"subscriber_flushes", s.subscriber_flushes},
                     {"invalidations_published", s.invalidations_published},
                     {"invalidations_received", s.invalidations_received},
                     {"invalidations_pending", s.invalidations_pending},
                     {"caches", std::move(caches)}});
  }
  return tiers;
}

}  // namespace poolscope::exporters::detail

#else  // built without Redis: no tier can be added

namespace poolscope::exporters::detail {

void read_tiers(const CollectorState&, Snapshot&) {}
void add_tier_families(FamilyBuilder&, const Snapshot::TierEntry&) {}
nlohmann::json tiers_json(const Snapshot&) { return nlohmann::json::array(); }

}  // namespace poolscope::exporters::detail

#endif
