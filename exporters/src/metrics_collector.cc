// Families are rebuilt on every Collect() from the components' statistics:
// nothing is cached between scrapes, so a scrape sees one consistent moment
// per component and costs what reading those statistics costs. Collect() and
// json() read the components once into a Snapshot and render it. A
// component whose statistics throw (a user's stats callback, say) is left
// out of that scrape; nothing thrown reaches prometheus-cpp or civetweb.

#include "poolscope/exporters/metrics_collector.h"

#include <prometheus/text_serializer.h>

#include <exception>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>

#include "collector_state.h"
#include "pool_metrics.h"
#include "poolscope/pool/errors.h"

namespace poolscope::exporters {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

const std::vector<double> kAcquireBuckets = {1e-6, 1e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1,
                                             0.25, 0.5,  1,    2.5,  5,    10,   30,   60};
const std::vector<double> kUsageBuckets = {1e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1,
                                           0.5,  1,    5,    10,   30,   60,   300};
const std::vector<double> kCreationBuckets = {1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.025, 0.05,
                                              0.1,  0.25, 0.5,  1,    2.5,  5,     10};

// Families in a fixed order, created on first use.
class FamilyBuilder {
 public:
  MetricFamily& family(const std::string& name, const std::string& help, MetricType type) {
    auto [it, added] = index_.emplace(name, families_.size());
    if (added) families_.push_back(MetricFamily{name, help, type, {}});
    return families_[it->second];
  }
  void gauge(const std::string& name, const std::string& help, Labels labels, double value) {
    ClientMetric m;
    m.label = std::move(labels);
    m.gauge.value = value;
    family(name, help, MetricType::Gauge).metric.push_back(std::move(m));
  }
  void counter(const std::string& name, const std::string& help, Labels labels, double value) {
    ClientMetric m;
    m.label = std::move(labels);
    m.counter.value = value;
    family(name, help, MetricType::Counter).metric.push_back(std::move(m));
  }
  template <class Histogram>  // Snapshot::PoolEntry::Histogram
  void histogram(const std::string& name, const std::string& help, Labels labels,
                 const Histogram& h) {
    const detail::AtomicHistogram::Snapshot& snap = h.counts;
    ClientMetric m;
    m.label = std::move(labels);
    m.histogram.sample_count = snap.count;
    m.histogram.sample_sum = snap.sum_seconds;
    for (std::size_t i = 0; i < h.bounds->size(); ++i) {
      m.histogram.bucket.push_back({snap.cumulative[i], (*h.bounds)[i]});
    }
    m.histogram.bucket.push_back({snap.count, std::numeric_limits<double>::infinity()});
    family(name, help, MetricType::Histogram).metric.push_back(std::move(m));
  }
  std::vector<MetricFamily> take() { return std::move(families_); }

 private:
  std::vector<MetricFamily> families_;
  std::map<std::string, std::size_t> index_;
};

Labels with(Labels labels, std::string name, std::string value) {
  labels.push_back({std::move(name), std::move(value)});
  return labels;
}

double seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

// The components' statistics at one moment, read under the collector's
// mutex and rendered after.
struct Snapshot {
  struct PoolEntry {
    PoolStats stats;
    std::uint64_t leaks = 0;  // from the tracer's table of the pool, if any
    // Filled for Collect() only.
    struct Histogram {
      const std::vector<double>* bounds;  // owned by metrics
      detail::AtomicHistogram::Snapshot counts;
    };
    std::shared_ptr<const detail::PoolMetrics> metrics;  // keeps the bounds alive
    Histogram acquire, usage, creation;
  };
  struct CacheEntry {
    std::string name;
    std::string pool;
    cache::CacheStats stats;
  };
  std::vector<PoolEntry> pools;
  std::vector<tracing::PoolSites> sites;  // one table per pool
  std::vector<CacheEntry> caches;
  std::vector<std::string> errors;  // components left out, and why
};

Snapshot take_snapshot(const detail::CollectorState& state, bool histograms) {
  Snapshot snap;
  poolscope::detail::MutexLock lock(state.mu);
  // Call-site tables first: the pools' leak counts come from them.
  std::set<std::string> seen;  // a pool traced twice is reported once
  for (const tracing::Tracer* tracer : state.tracers) {
    try {
      for (tracing::PoolSites& t : tracer->pool_sites()) {
        if (seen.insert(t.pool).second) snap.sites.push_back(std::move(t));
      }
    } catch (...) {
      snap.errors.push_back("call sites: " + exception_text(std::current_exception()));
    }
  }
  for (const auto& [pm, subscription] : state.pools) {
    try {
      std::optional<PoolStats> stats = pm->view().stats();
      if (!stats) continue;  // the pool is being destroyed
      Snapshot::PoolEntry entry{std::move(*stats)};
      for (const tracing::PoolSites& t : snap.sites) {
        if (t.pool == pm->name()) entry.leaks = t.leaks_reported;
      }
      if (histograms) {
        entry.metrics = pm;
        entry.acquire = {&pm->acquire().bounds(), pm->acquire().snapshot()};
        entry.usage = {&pm->usage().bounds(), pm->usage().snapshot()};
        entry.creation = {&pm->creation().bounds(), pm->creation().snapshot()};
      }
      snap.pools.push_back(std::move(entry));
    } catch (...) {
      snap.errors.push_back("pool " + pm->name() + ": " + exception_text(std::current_exception()));
    }
  }
  for (const CacheHandle& c : state.caches) {
    try {
      snap.caches.push_back({c.name, c.pool, c.stats()});
    } catch (...) {
      snap.errors.push_back("cache " + c.name + ": " + exception_text(std::current_exception()));
    }
  }
  return snap;
}

void add_pool_families(FamilyBuilder& out, const Snapshot::PoolEntry& entry) {
  const PoolStats& s = entry.stats;
  const Labels pool{{"pool", s.name}};
  const std::string conn_help =
      "Connections of the pool by state: active (checked out), idle (ready), pending (threads "
      "waiting).";
  out.gauge("poolscope_connections", conn_help, with(pool, "state", "active"),
            static_cast<double>(s.active));
  out.gauge("poolscope_connections", conn_help, with(pool, "state", "idle"),
            static_cast<double>(s.idle));
  out.gauge("poolscope_connections", conn_help, with(pool, "state", "pending"),
            static_cast<double>(s.pending));
  out.gauge("poolscope_connections_max",
            "Most connections the pool opens: pool_size + max_overflow.", pool,
            static_cast<double>(s.max_connections));
  out.gauge("poolscope_connections_size", "Connections the pool keeps open once made (pool_size).",
            pool, static_cast<double>(s.pool_size));
  out.gauge("poolscope_connections_min", "Connections kept open even when idle (min_idle).", pool,
            static_cast<double>(s.min_idle));
  out.gauge("poolscope_connections_overflow", "Overflow connections open now (beyond pool_size).",
            pool, static_cast<double>(s.overflow_in_use));
  out.counter("poolscope_connections_timeout_total",
              "Checkouts that gave up after checkout_timeout.", pool,
              static_cast<double>(s.timeouts));
  out.histogram("poolscope_connections_acquire_seconds",
                "Time acquire() took to get a connection from the pool (0 when one was ready).",
                pool, entry.acquire);
  out.histogram("poolscope_connections_usage_seconds",
                "Time a connection was held, from checkout to its return.", pool, entry.usage);
  out.histogram("poolscope_connections_creation_seconds",
                "Time to open a physical connection; the count is connections opened.", pool,
                entry.creation);
  for (std::size_t r = 0; r < kCloseReasonCount; ++r) {
    out.counter("poolscope_connections_closed_total", "Physical connections closed, by reason.",
                with(pool, "reason", std::string(to_string(static_cast<CloseReason>(r)))),
                static_cast<double>(s.closed[r]));
  }
  const std::string err_help =
      "Connection failures, by phase: connect (could not open), validation (failed its check on "
      "checkout), checkin (found broken when it came back).";
  out.counter("poolscope_connection_errors_total", err_help, with(pool, "phase", "connect"),
              static_cast<double>(s.connect_failures));
  out.counter("poolscope_connection_errors_total", err_help, with(pool, "phase", "validation"),
              static_cast<double>(s.closed_by(CloseReason::kValidationFailed)));
  out.counter("poolscope_connection_errors_total", err_help, with(pool, "phase", "checkin"),
              static_cast<double>(s.closed_by(CloseReason::kBroken)));
  out.counter("poolscope_connections_leaked_total",
              "Leases reported held longer than the tracer's leak_threshold.", pool,
              static_cast<double>(entry.leaks));
  out.counter("poolscope_connections_reuses_total",
              "Nested acquire() calls served by the connection the thread already held.", pool,
              static_cast<double>(s.reuses));
}

void add_site_families(FamilyBuilder& out, const tracing::PoolSites& table) {
  const Labels pool{{"pool", table.pool}};
  for (const tracing::SiteStats& site : table.sites) {
    const Labels labels = with(pool, "site", site.name);
    // checkins, not acquires: a counter must never go down, and a lease
    // still out would count now and leave the count when it comes back.
    out.counter("poolscope_site_acquires_total",
                "Checkouts from the pool, by call site, counted when the lease comes back.", labels,
                static_cast<double>(site.checkins));
    out.counter("poolscope_site_reuses_total",
                "Nested acquires sharing the thread's lease, by call site.", labels,
                static_cast<double>(site.reuses));
    out.counter("poolscope_site_usage_seconds_total",
                "Seconds connections were held, by call site.", labels, seconds(site.total_hold));
    out.counter("poolscope_site_timeouts_total", "Checkouts that timed out, by call site.", labels,
                static_cast<double>(site.timeouts));
    out.counter("poolscope_site_leaks_total", "Leases reported as leaked, by call site.", labels,
                static_cast<double>(site.leaks));
  }
  out.gauge("poolscope_sites_folded",
            "Distinct call sites counted under site=\"other\" (past max_sites).", pool,
            static_cast<double>(table.folded_sites));
}

void add_cache_families(FamilyBuilder& out, const Snapshot::CacheEntry& entry) {
  const cache::CacheStats& s = entry.stats;
  const Labels cache{{"cache", entry.name}, {"pool", entry.pool}};
  const std::string req_help = "Cache lookups, by result.";
  out.counter("poolscope_cache_requests_total", req_help, with(cache, "result", "hit"),
              static_cast<double>(s.hits));
  out.counter("poolscope_cache_requests_total", req_help, with(cache, "result", "miss"),
              static_cast<double>(s.misses));
  const std::string load_help = "Loader runs, by outcome.";
  out.counter("poolscope_cache_loads_total", load_help, with(cache, "outcome", "success"),
              static_cast<double>(s.loads));
  out.counter("poolscope_cache_loads_total", load_help, with(cache, "outcome", "failure"),
              static_cast<double>(s.load_failures));
  out.counter("poolscope_cache_load_seconds_total", "Seconds spent in loaders.", cache,
              seconds(s.load_time));
  const std::string ev_help =
      "Entries removed, by reason: capacity (LRU), ttl (expired), invalidated.";
  out.counter("poolscope_cache_evictions_total", ev_help, with(cache, "reason", "capacity"),
              static_cast<double>(s.evictions_capacity));
  out.counter("poolscope_cache_evictions_total", ev_help, with(cache, "reason", "ttl"),
              static_cast<double>(s.evictions_ttl));
  out.counter("poolscope_cache_evictions_total", ev_help, with(cache, "reason", "invalidated"),
              static_cast<double>(s.evictions_invalidated));
  out.gauge("poolscope_cache_entries", "Entries in the cache.", cache,
            static_cast<double>(s.entries));
  out.gauge("poolscope_cache_bytes", "Approximate memory the entries take.", cache,
            static_cast<double>(s.approximate_bytes));
  out.counter("poolscope_cache_sessions_avoided_total",
              "Pool checkouts that cache hits made unnecessary.", cache,
              static_cast<double>(s.sessions_avoided));
}

}  // namespace

MetricsCollector::MetricsCollector(MetricsConfig config)
    : config_(std::move(config)), state_(std::make_shared<detail::CollectorState>()) {}

MetricsCollector::~MetricsCollector() {
  std::vector<detail::CollectorState::PoolEntry> gone;  // unsubscribed outside the lock
  poolscope::detail::MutexLock lock(state_->mu);
  gone.swap(state_->pools);
}

void MetricsCollector::add_pool(Pool& pool) {
  poolscope::detail::MutexLock lock(state_->mu);
  for (const auto& entry : state_->pools) {
    if (entry.metrics->name() == pool.name()) {
      throw std::invalid_argument("MetricsCollector::add_pool: a pool named '" + pool.name() +
                                  "' is already added");
    }
  }
  const double timeout = std::chrono::duration<double>(pool.config().checkout_timeout).count();
  auto pm = std::make_shared<detail::PoolMetrics>(
      pool, state_,
      detail::normalize_bounds(
          config_.acquire_buckets.empty() ? kAcquireBuckets : config_.acquire_buckets, timeout),
      detail::normalize_bounds(config_.usage_buckets.empty() ? kUsageBuckets
                                                             : config_.usage_buckets),
      detail::normalize_bounds(config_.creation_buckets.empty() ? kCreationBuckets
                                                                : config_.creation_buckets));
  Subscription subscription = pool.add_observer(pm);
  state_->pools.push_back({std::move(pm), std::move(subscription)});
}

void MetricsCollector::add_tracer(const tracing::Tracer& tracer) {
  poolscope::detail::MutexLock lock(state_->mu);
  if (std::find(state_->tracers.begin(), state_->tracers.end(), &tracer) == state_->tracers.end()) {
    state_->tracers.push_back(&tracer);
  }
}

void MetricsCollector::remove_tracer(const tracing::Tracer& tracer) {
  poolscope::detail::MutexLock lock(state_->mu);
  std::erase(state_->tracers, &tracer);
}

void MetricsCollector::add_cache(cache::SettingsCache& c) {
  CacheHandle handle{c.name(), c.pool().name(), [&c] { return c.stats(); }, [&c] { c.clear(); },
                     [&c](std::string_view glob) {
                       return c.cache().invalidate_if([glob](const std::int64_t& entity) {
                         return cache::glob_match(glob, std::to_string(entity));
                       });
                     }};
  add_cache(std::move(handle));
}

void MetricsCollector::add_cache(CacheHandle handle) {
  if (handle.name.empty() || !handle.stats) {
    throw std::invalid_argument(
        "MetricsCollector::add_cache: a cache needs a name and a stats function");
  }
  poolscope::detail::MutexLock lock(state_->mu);
  for (const CacheHandle& c : state_->caches) {
    if (c.name == handle.name) {
      throw std::invalid_argument("MetricsCollector::add_cache: a cache named '" + handle.name +
                                  "' is already added");
    }
  }
  state_->caches.push_back(std::move(handle));
}

void MetricsCollector::remove_cache(std::string_view name) {
  poolscope::detail::MutexLock lock(state_->mu);
  std::erase_if(state_->caches, [name](const CacheHandle& c) { return c.name == name; });
}

std::vector<prometheus::MetricFamily> MetricsCollector::Collect() const {
  try {
    const Snapshot snap = take_snapshot(*state_, /*histograms=*/true);
    FamilyBuilder out;
    for (const Snapshot::PoolEntry& p : snap.pools) add_pool_families(out, p);
    for (const tracing::PoolSites& t : snap.sites) add_site_families(out, t);
    for (const Snapshot::CacheEntry& c : snap.caches) add_cache_families(out, c);
    out.gauge("poolscope_build_info", "poolscope's version; always 1.",
              {{"version", POOLSCOPE_VERSION}}, 1);
    return out.take();
  } catch (...) {
    return {};  // out of memory: an empty scrape, not an exception in civetweb
  }
}

std::string MetricsCollector::text() const {
  return prometheus::TextSerializer().Serialize(Collect());
}

std::string render_text(std::initializer_list<const prometheus::Collectable*> collectables) {
  std::vector<MetricFamily> families;
  for (const prometheus::Collectable* c : collectables) {
    for (MetricFamily& f : c->Collect()) families.push_back(std::move(f));
  }
  return prometheus::TextSerializer().Serialize(families);
}

std::string MetricsCollector::json() const {
  const Snapshot snap = take_snapshot(*state_, /*histograms=*/false);
  nlohmann::json out = {{"version", POOLSCOPE_VERSION}};
  nlohmann::json pools = nlohmann::json::array();
  nlohmann::json sites = nlohmann::json::array();
  nlohmann::json caches = nlohmann::json::array();
  for (const Snapshot::PoolEntry& p : snap.pools) {
    const PoolStats& s = p.stats;
    nlohmann::json closed = nlohmann::json::object();
    for (std::size_t r = 0; r < kCloseReasonCount; ++r) {
      closed[std::string(to_string(static_cast<CloseReason>(r)))] = s.closed[r];
    }
    pools.push_back({{"name", s.name},
                     {"url", s.url},
                     {"backend", s.backend},
                     {"pool_size", s.pool_size},
                     {"max_overflow", s.max_overflow},
                     {"max_connections", s.max_connections},
                     {"min_idle", s.min_idle},
                     {"open", s.open},
                     {"active", s.active},
                     {"idle", s.idle},
                     {"pending", s.pending},
                     {"overflow_in_use", s.overflow_in_use},
                     {"acquires", s.acquires},
                     {"reuses", s.reuses},
                     {"waits", s.waits},
                     {"total_wait_s", seconds(s.total_wait)},
                     {"timeouts", s.timeouts},
                     {"connections_opened", s.connections_opened},
                     {"connect_failures", s.connect_failures},
                     {"rollbacks_on_return", s.rollbacks_on_return},
                     {"closed", std::move(closed)}});
  }
  for (const tracing::PoolSites& t : snap.sites) {
    nlohmann::json table = nlohmann::json::array();
    for (const tracing::SiteStats& site : t.sites) {
      table.push_back({{"site", site.name},
                       {"acquires", site.acquires},
                       {"reuses", site.reuses},
                       {"connections_opened", site.connections_opened},
                       {"total_hold_s", seconds(site.total_hold)},
                       {"max_hold_s", seconds(site.max_hold)},
                       {"timeouts", site.timeouts},
                       {"leaks", site.leaks}});
    }
    sites.push_back({{"pool", t.pool},
                     {"folded_sites", t.folded_sites},
                     {"leaks_reported", t.leaks_reported},
                     {"sites", std::move(table)}});
  }
  for (const Snapshot::CacheEntry& c : snap.caches) {
    const cache::CacheStats& s = c.stats;
    caches.push_back({{"name", c.name},
                      {"pool", c.pool},
                      {"hits", s.hits},
                      {"misses", s.misses},
                      {"hit_ratio", s.hit_ratio()},
                      {"loads", s.loads},
                      {"load_failures", s.load_failures},
                      {"load_time_s", seconds(s.load_time)},
                      {"evictions",
                       {{"capacity", s.evictions_capacity},
                        {"ttl", s.evictions_ttl},
                        {"invalidated", s.evictions_invalidated}}},
                      {"entries", s.entries},
                      {"approximate_bytes", s.approximate_bytes},
                      {"sessions_avoided", s.sessions_avoided}});
  }
  out["pools"] = std::move(pools);
  out["sites"] = std::move(sites);
  out["caches"] = std::move(caches);
  if (!snap.errors.empty()) out["errors"] = snap.errors;
  // Names are the application's; one that is not UTF-8 must not fail the dump.
  return out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace {

// The action `member` of the cache named name (empty if none), copied so it
// runs outside the mutex.
template <class F>
F find_action(const detail::CollectorState& state, std::string_view name, F CacheHandle::*member) {
  poolscope::detail::MutexLock lock(state.mu);
  for (const CacheHandle& c : state.caches) {
    if (c.name == name) return c.*member;
  }
  return {};
}

}  // namespace

bool MetricsCollector::clear_cache(std::string_view name) {
  const std::function<void()> clear = find_action(*state_, name, &CacheHandle::clear);
  if (!clear) return false;
  clear();
  return true;
}

std::optional<std::size_t> MetricsCollector::invalidate_cache(std::string_view name,
                                                              std::string_view glob) {
  const auto invalidate = find_action(*state_, name, &CacheHandle::invalidate_glob);
  if (!invalidate) return std::nullopt;
  return invalidate(glob);
}

std::vector<std::string> MetricsCollector::cache_names() const {
  poolscope::detail::MutexLock lock(state_->mu);
  std::vector<std::string> names;
  for (const CacheHandle& c : state_->caches) names.push_back(c.name);
  return names;
}

}  // namespace poolscope::exporters
