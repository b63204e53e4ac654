// Families are rebuilt on every Collect() from the components' statistics:
// nothing is cached between scrapes, so a scrape sees one consistent moment
// per component and costs what reading those statistics costs. Collect() and
// json() read the components once into a Snapshot (snapshot.h) and render it.
// A component whose statistics throw (a user's stats callback, say) is left
// out of that scrape; nothing thrown reaches prometheus-cpp or civetweb.

#include "poolscope/exporters/metrics_collector.h"

#include <prometheus/text_serializer.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "collector_state.h"
#include "families.h"
#include "redis_families.h"
#include "snapshot.h"

namespace poolscope::exporters {
namespace {

using prometheus::MetricFamily;

const std::vector<double> kUsageBuckets = {1e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1,
                                           0.5,  1,    5,    10,   30,   60,   300};
const std::vector<double> kCreationBuckets = {1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.025, 0.05,
                                              0.1,  0.25, 0.5,  1,    2.5,  5,     10};

std::vector<double> bounds_or(const std::vector<double>& configured,
                              const std::vector<double>& fallback) {
  return detail::normalize_bounds(configured.empty() ? fallback : configured);
}

double seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

const std::vector<double>& default_acquire_buckets() {
  static const std::vector<double> kBuckets = {
      1e-7, 2.5e-7, 5e-7,  1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3,
      5e-3, 0.01,   0.025, 0.05, 0.1,    0.25, 0.5,  1,      2.5,  5,    10,     30,   60};
  return kBuckets;
}

MetricsCollector::MetricsCollector(MetricsConfig config)
    : config_(std::move(config)), state_(std::make_unique<detail::CollectorState>()) {}

MetricsCollector::~MetricsCollector() {
  std::vector<detail::CollectorState::PoolEntry> gone;  // unsubscribed outside the lock
  poolscope::detail::MutexLock lock(state_->mu);
  gone.swap(state_->pools);
}

void MetricsCollector::add_pool(Pool& pool) {
  auto pm = std::make_shared<detail::PoolMetrics>(
      pool, bounds_or(config_.acquire_buckets, default_acquire_buckets()),
      bounds_or(config_.usage_buckets, kUsageBuckets),
      bounds_or(config_.creation_buckets, kCreationBuckets));
  detail::CollectorState::Pruned gone;  // destroyed after the lock
  poolscope::detail::MutexLock lock(state_->mu);
  gone = state_->prune();
  for (const auto& entry : state_->pools) {
    if (entry.metrics->name() == pool.name()) {
      throw std::invalid_argument("MetricsCollector::add_pool: a pool named '" + pool.name() +
                                  "' is already added");
    }
  }
  Subscription subscription = pool.add_observer(pm);
  state_->pools.push_back({std::move(pm), std::move(subscription)});
}

void MetricsCollector::add_tracer(const tracing::Tracer& tracer) {
  detail::CollectorState::Pruned gone;
  poolscope::detail::MutexLock lock(state_->mu);
  // Pruned first: a tracer at the address of a destroyed one is a new tracer.
  gone = state_->prune();
  const bool added = std::any_of(state_->tracers.begin(), state_->tracers.end(),
                                 [&](const auto& t) { return t.tracer == &tracer; });
  if (!added) state_->tracers.push_back({&tracer, tracer.view()});
}

void MetricsCollector::remove_tracer(const tracing::Tracer& tracer) {
  poolscope::detail::MutexLock lock(state_->mu);
  std::erase_if(state_->tracers, [&](const auto& t) { return t.tracer == &tracer; });
}

void MetricsCollector::add_cache(cache::SettingsCache& c) {
  CacheHandle handle{c.name(), c.pool().name(), [&c] { return c.stats(); }, [&c] { c.clear(); },
                     [&c](std::string_view glob) {
                       return c.cache().invalidate_if([glob](const std::int64_t& entity) {
                         return cache::glob_match(glob, std::to_string(entity));
                       });
                     }};
  add_watched_cache(std::move(handle), c.watch());
}

void MetricsCollector::add_watched_cache(CacheHandle handle,
                                         std::optional<poolscope::detail::Lifeline::Watch> watch) {
  if (handle.name.empty() || !handle.stats) {
    throw std::invalid_argument(
        "MetricsCollector::add_cache: a cache needs a name and a stats function");
  }
  detail::CollectorState::Pruned gone;
  poolscope::detail::MutexLock lock(state_->mu);
  gone = state_->prune();
  for (const auto& c : state_->caches) {
    if (c.handle.name == handle.name) {
      throw std::invalid_argument("MetricsCollector::add_cache: a cache named '" + handle.name +
                                  "' is already added");
    }
  }
  state_->caches.push_back({std::move(handle), std::move(watch)});
}

void MetricsCollector::remove_cache(std::string_view name) {
  poolscope::detail::MutexLock lock(state_->mu);
  std::erase_if(state_->caches, [name](const auto& c) { return c.handle.name == name; });
}

std::vector<MetricFamily> MetricsCollector::Collect() const {
  try {
    return detail::families_of(detail::take_snapshot(*state_, /*histograms=*/true));
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

namespace {

nlohmann::json pool_json(const detail::Snapshot::PoolEntry& p) {
  const PoolStats& s = p.stats;
  nlohmann::json closed = nlohmann::json::object();
  for (std::size_t r = 0; r < kCloseReasonCount; ++r) {
    closed[std::string(to_string(static_cast<CloseReason>(r)))] = s.closed[r];
  }
  return {{"name", s.name},
          {"url", s.url},
          {"backend", s.backend},
          {"pool_size", s.pool_size},
          {"max_overflow", s.max_overflow},
          {"max_connections", s.max_connections},
          {"min_idle", s.min_idle},
          {"checkout_timeout_s", p.checkout_timeout_s},
          {"open", s.open},
          {"active", s.active},
          {"idle", s.idle},
          {"pending", s.pending},
          {"oldest_wait_s", seconds(s.oldest_wait)},
          {"overflow_in_use", s.overflow_in_use},
          {"acquires", s.acquires},
          {"reuses", s.reuses},
          {"statements_prepared", s.statements_prepared},
          {"statement_cache_hits", s.statement_cache_hits},
          {"waits", s.waits},
          {"total_wait_s", seconds(s.total_wait)},
          {"timeouts", s.timeouts},
          {"connections_opened", s.connections_opened},
          {"connect_failures", s.connect_failures},
          {"rollbacks_on_return", s.rollbacks_on_return},
          {"closed", std::move(closed)}};
}

nlohmann::json sites_json(const tracing::PoolSites& t) {
  nlohmann::json table = nlohmann::json::array();
  for (const tracing::SiteStats& site : t.sites) {
    table.push_back({{"site", site.name},
                     {"acquires", site.acquires},
                     {"active", site.active},
                     {"reuses", site.reuses},
                     {"connections_opened", site.connections_opened},
                     {"total_hold_s", seconds(site.total_hold)},
                     {"max_hold_s", seconds(site.max_hold)},
                     {"timeouts", site.timeouts},
                     {"leaks", site.leaks}});
  }
  return {{"pool", t.pool},
          {"folded_sites", t.folded_sites},
          {"leaks_reported", t.leaks_reported},
          {"sites", std::move(table)}};
}

nlohmann::json cache_json(const detail::Snapshot::CacheEntry& c) {
  const cache::CacheStats& s = c.stats;
  return {{"name", c.name},
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
          {"sessions_avoided", s.sessions_avoided}};
}

}  // namespace

std::string MetricsCollector::json() const {
  const detail::Snapshot snap = detail::take_snapshot(*state_, /*histograms=*/false);
  nlohmann::json out = {{"version", POOLSCOPE_VERSION}};
  nlohmann::json pools = nlohmann::json::array();
  nlohmann::json sites = nlohmann::json::array();
  nlohmann::json caches = nlohmann::json::array();
  for (const auto& p : snap.pools) pools.push_back(pool_json(p));
  for (const auto& t : snap.sites) sites.push_back(sites_json(t));
  for (const auto& c : snap.caches) caches.push_back(cache_json(c));
  out["pools"] = std::move(pools);
  out["sites"] = std::move(sites);
  out["caches"] = std::move(caches);
  out["redis_tiers"] = detail::tiers_json(snap);
  if (!snap.errors.empty()) out["errors"] = snap.errors;
  // Names are the application's; one that is not UTF-8 must not fail the dump.
  return out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace {

// The action `member` of the live cache named name (empty if none) and its
// lifeline, copied so the action runs outside the mutex.
template <class F>
std::pair<F, std::optional<poolscope::detail::Lifeline::Watch>> find_action(
    const detail::CollectorState& state, std::string_view name, F CacheHandle::*member) {
  poolscope::detail::MutexLock lock(state.mu);
  for (const auto& c : state.caches) {
    if (c.handle.name == name && !c.expired()) return {c.handle.*member, c.watch};
  }
  return {};
}

// Runs action while watch (if any) says its cache lives; nullopt if it is gone.
template <class F, class... Args>
auto run_watched(const F& action, const std::optional<poolscope::detail::Lifeline::Watch>& watch,
                 Args&&... args) -> std::optional<decltype(action(std::forward<Args>(args)...))> {
  poolscope::detail::Lifeline::Guard alive;
  if (watch) {
    alive = watch->lock();
    if (!alive) return std::nullopt;
  }
  return action(std::forward<Args>(args)...);
}

}  // namespace

bool MetricsCollector::clear_cache(std::string_view name) {
  const auto [clear, watch] = find_action(*state_, name, &CacheHandle::clear);
  if (!clear) return false;
  return run_watched(
             [&] {
               clear();
               return true;
             },
             watch)
      .has_value();
}

std::optional<std::size_t> MetricsCollector::invalidate_cache(std::string_view name,
                                                              std::string_view glob) {
  const auto [invalidate, watch] = find_action(*state_, name, &CacheHandle::invalidate_glob);
  if (!invalidate) return std::nullopt;
  return run_watched(invalidate, watch, glob);
}

std::vector<std::string> MetricsCollector::cache_names() const {
  poolscope::detail::MutexLock lock(state_->mu);
  std::vector<std::string> names;
  for (const auto& c : state_->caches) {
    if (!c.expired()) names.push_back(c.handle.name);
  }
  return names;
}

}  // namespace poolscope::exporters
