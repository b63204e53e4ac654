// MetricsCollector: poolscope's pools, call sites and caches as Prometheus
// metric families, read when scraped. Names follow HikariCP's stems
// (poolscope_connections{state}, _pending, _max, _min, _timeout_total,
// _acquire_seconds, _usage_seconds, _creation_seconds, ...).
//
//   auto metrics = std::make_shared<poolscope::exporters::MetricsCollector>();
//   metrics->add_pool(pool);
//   metrics->add_tracer(tracer);
//   metrics->add_cache(settings_cache);
//   poolscope::exporters::MetricsServer server(metrics);   // /metrics on 127.0.0.1:9464
//   // or: host_exposer.RegisterCollectable(metrics); or: metrics->text()
//
// Nothing here is on the checkout path except the three histograms, which a
// per-pool observer fills with poolscope's own relaxed atomics (prometheus-
// cpp's Histogram::Observe takes a mutex). Everything else is read from the
// components' own statistics at collect time. Every series exists from the
// moment its component is added, at zero.
//
// Lifetimes: the collector reads pools through PoolView, tracers through
// TracerView and poolscope's caches and Redis tiers only while their watch()
// says they are alive, so pools, tracers, caches, tiers and the collector may
// be destroyed in any order, also while another thread (a host's
// prometheus-cpp Exposer, a MetricsServer) scrapes. A component being destroyed drops out of the
// scrape that sees it go, and its name may be added again.
//
// The class is thread-safe. No concurrent call to any API of this type causes
// a data race.

#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "poolscope/base/lifeline.h"
#include "poolscope/cache/cache_stats.h"
#include "poolscope/cache/instance_cache.h"
#include "poolscope/cache/settings_cache.h"
#include "poolscope/cache/ttl_cache.h"
#include "poolscope/pool/pool.h"
#include "poolscope/tracing/tracer.h"

namespace poolscope::cache {
class RedisTierStatsSource;  // poolscope/cache/redis/redis_stats.h (poolscope::cache_redis_stats)
}

namespace poolscope::exporters {

namespace detail {
class CollectorState;
}

// The upper bounds (seconds) of poolscope_connections_acquire_seconds by
// default: the same for every pool, whatever its checkout_timeout, so that
// pools (and one pool before and after a config change) sum by `le`. From
// 100 ns, where a ready connection is handed out, through the microseconds of
// a hand-off to a waiter and the milliseconds of a validation ping or a
// connect, to a minute.
const std::vector<double>& default_acquire_buckets();

struct MetricsConfig {
  // Histogram upper bounds in seconds; empty: poolscope's defaults. One set
  // for every pool of this collector (keep them equal across processes too,
  // or `sum by (le)` mixes bucket sets).
  std::vector<double> acquire_buckets{};
  std::vector<double> usage_buckets{};
  std::vector<double> creation_buckets{};
};

// A cache as the collector sees it: its statistics, and the admin actions.
// The functions are called from scraping threads while the handle is added:
// they must stay callable until remove_cache() (capture what they read by
// shared_ptr). poolscope's own caches need no handle: add them directly.
struct CacheHandle {
  std::string name{};
  std::string pool{};  // label value; empty when the cache is not tied to a pool
  std::function<cache::CacheStats()> stats{};
  std::function<void()> clear{};
  // Removes the entries whose key (as text) matches a glob; returns how many.
  // Empty when the cache's keys have no text form.
  std::function<std::size_t(std::string_view)> invalidate_glob{};
};

class MetricsCollector : public prometheus::Collectable {
 public:
  explicit MetricsCollector(MetricsConfig config = {});
  ~MetricsCollector() override;
  MetricsCollector(const MetricsCollector&) = delete;
  MetricsCollector& operator=(const MetricsCollector&) = delete;

  // Starts reporting pool; its histograms count from now. Throws
  // std::invalid_argument if a live pool of that name is already added.
  void add_pool(Pool& pool);

  // Reports tracer's call sites (labelled by pool) and per-pool leak counts.
  void add_tracer(const tracing::Tracer& tracer);
  void remove_tracer(const tracing::Tracer& tracer);

  // Reports a cache: a TtlCache, InstanceCache or SettingsCache (whose pool
  // label is its pool's name), or a CacheHandle for anything else. Throws
  // std::invalid_argument if a live cache of that name is already added.
  template <class K, class V, class H, class E>
  void add_cache(cache::TtlCache<K, V, H, E>& c, std::string pool = {});
  template <class Id, class T>
  void add_cache(cache::InstanceCache<Id, T>& c, std::string pool = {}) {
    add_cache(c.cache(), std::move(pool));
  }
  void add_cache(cache::SettingsCache& c);
  void add_cache(CacheHandle handle) { add_watched_cache(std::move(handle), std::nullopt); }
  void remove_cache(std::string_view name);

  // Reports a Redis tier (a poolscope::cache::RedisTier, through the
  // hiredis-free interface it implements): poolscope_redis_* families,
  // labelled by its prefix and pool (the pool whose caches it serves; may
  // be empty), per tier and per attached cache; and "redis_tiers" in json().
  // Read through tier.watch(), so the tier may be destroyed at any time,
  // before or after the collector, also while another thread scrapes.
  // Adding a tier already added does nothing. Throws std::invalid_argument
  // if another live tier with the same prefix and pool is added. Only in a
  // poolscope built with Redis (POOLSCOPE_WITH_REDIS).
  void add_redis_tier(const cache::RedisTierStatsSource& tier, std::string pool = {});
  void remove_redis_tier(const cache::RedisTierStatsSource& tier);

  // The families, for prometheus-cpp (Exposer::RegisterCollectable).
  // Never throws: a component whose statistics throw (a CacheHandle's stats
  // function, say) is left out of this scrape. Every counter only grows;
  // poolscope_site_acquires_total counts a checkout when its lease comes back.
  std::vector<prometheus::MetricFamily> Collect() const override;

  // The Prometheus text exposition of Collect().
  std::string text() const;

  // Pools, call sites (acquires including the leases still out), caches
  // and Redis tiers as one JSON document; components whose statistics threw are listed
  // under "errors". Text that is not UTF-8 is replaced, not thrown on.
  std::string json() const;

  // Admin actions on an added cache. clear_cache returns false for an
  // unknown (or destroyed) cache; invalidate_cache returns nullopt for an
  // unknown cache or one without text keys.
  bool clear_cache(std::string_view name);
  std::optional<std::size_t> invalidate_cache(std::string_view name, std::string_view glob);
  std::vector<std::string> cache_names() const;

 private:
  // watch: the cache's lifeline; its functions run only while it holds.
  void add_watched_cache(CacheHandle handle,
                         std::optional<poolscope::detail::Lifeline::Watch> watch);

  const MetricsConfig config_;
  const std::unique_ptr<detail::CollectorState> state_;
};

// Serializes families from several collectables (say, the host's own
// prometheus::Registry and a MetricsCollector) into one text exposition.
std::string render_text(std::initializer_list<const prometheus::Collectable*> collectables);

template <class K, class V, class H, class E>
void MetricsCollector::add_cache(cache::TtlCache<K, V, H, E>& c, std::string pool) {
  // The functions capture c by reference: the collector calls them only
  // while c.watch() holds, so never on a destroyed cache.
  CacheHandle handle{
      c.name(), std::move(pool), [&c] { return c.stats(); }, [&c] { c.clear(); }, {}};
  if constexpr (cache::StringKey<K>) {
    handle.invalidate_glob = [&c](std::string_view glob) { return c.invalidate_glob(glob); };
  } else if constexpr (std::is_integral_v<K>) {
    handle.invalidate_glob = [&c](std::string_view glob) {
      return c.invalidate_if(
          [glob](const K& key) { return cache::glob_match(glob, std::to_string(key)); });
    };
  }
  add_watched_cache(std::move(handle), c.watch());
}

}  // namespace poolscope::exporters
