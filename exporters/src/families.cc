#include "families.h"

#include <chrono>
#include <string>

#include "family_builder.h"
#include "redis_families.h"

namespace poolscope::exporters::detail {
namespace {

double seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }
double number(std::uint64_t n) { return static_cast<double>(n); }

// Gauges: connections by state, threads waiting, and the configuration.
void add_pool_gauges(FamilyBuilder& out, const Snapshot::PoolEntry& entry, const Labels& pool) {
  const PoolStats& s = entry.stats;
  const std::string conn_help =
      "Physical connections of the pool by state: active (checked out) or idle (ready). Threads "
      "waiting are poolscope_connections_pending.";
  out.gauge("poolscope_connections", conn_help, with(pool, "state", "active"), number(s.active));
  out.gauge("poolscope_connections", conn_help, with(pool, "state", "idle"), number(s.idle));
  out.gauge("poolscope_connections_pending", "Threads waiting in acquire() for a connection.", pool,
            number(s.pending));
  out.gauge("poolscope_connections_pending_oldest_wait_seconds",
            "How long the first thread waiting in acquire() has waited; 0 when none waits.", pool,
            seconds(s.oldest_wait));
  out.gauge("poolscope_connections_max",
            "Most connections the pool opens: pool_size + max_overflow.", pool,
            number(s.max_connections));
  out.gauge("poolscope_connections_size", "Connections the pool keeps open once made (pool_size).",
            pool, number(s.pool_size));
  out.gauge("poolscope_connections_min", "Connections kept open even when idle (min_idle).", pool,
            number(s.min_idle));
  out.gauge("poolscope_connections_overflow", "Overflow connections open now (beyond pool_size).",
            pool, number(s.overflow_in_use));
  out.gauge("poolscope_connections_checkout_timeout_seconds",
            "How long acquire() waits before it gives up (checkout_timeout).", pool,
            entry.checkout_timeout_s);
}

void add_pool_families(FamilyBuilder& out, const Snapshot::PoolEntry& entry) {
  const PoolStats& s = entry.stats;
  const Labels pool{{"pool", s.name}};
  add_pool_gauges(out, entry, pool);
  out.counter("poolscope_connections_timeout_total",
              "Checkouts that gave up after checkout_timeout.", pool, number(s.timeouts));
  out.counter("poolscope_connections_waits_total", "Checkouts that had to queue for a connection.",
              pool, number(s.waits));
  out.counter("poolscope_connections_wait_seconds_total",
              "Seconds checkouts spent queued for a connection.", pool, seconds(s.total_wait));
  out.histogram("poolscope_connections_acquire_seconds",
                "Time acquire() took, as its caller saw it: queueing, validation and any "
                "connect made for it. The same buckets for every pool.",
                pool, entry.acquire);
  out.histogram("poolscope_connections_usage_seconds",
                "Time a connection was held, from checkout to its return.", pool, entry.usage);
  out.histogram("poolscope_connections_creation_seconds",
                "Time to open a physical connection; the count is connections opened.", pool,
                entry.creation);
  for (std::size_t r = 0; r < kCloseReasonCount; ++r) {
    out.counter("poolscope_connections_closed_total", "Physical connections closed, by reason.",
                with(pool, "reason", std::string(to_string(static_cast<CloseReason>(r)))),
                number(s.closed[r]));
  }
  const std::string err_help =
      "Connection failures, by phase: connect (could not open), validation (failed its check on "
      "checkout), checkin (found broken when it came back).";
  out.counter("poolscope_connection_errors_total", err_help, with(pool, "phase", "connect"),
              number(s.connect_failures));
  out.counter("poolscope_connection_errors_total", err_help, with(pool, "phase", "validation"),
              number(s.closed_by(CloseReason::kValidationFailed)));
  out.counter("poolscope_connection_errors_total", err_help, with(pool, "phase", "checkin"),
              number(s.closed_by(CloseReason::kBroken)));
  out.counter("poolscope_connections_leaked_total",
              "Leases reported held longer than the tracer's leak_threshold.", pool,
              number(entry.leaks));
  out.counter("poolscope_connections_reuses_total",
              "Nested acquire() calls served by the connection the thread already held.", pool,
              number(s.reuses));
  out.counter("poolscope_statements_prepared_total",
              "Statements Lease::prepared() prepared on a server connection.", pool,
              number(s.statements_prepared));
  out.counter("poolscope_statement_cache_hits_total",
              "Executions of a statement its connection had prepared before.", pool,
              number(s.statement_cache_hits));
}

void add_site_families(FamilyBuilder& out, const tracing::PoolSites& table) {
  const Labels pool{{"pool", table.pool}};
  for (const tracing::SiteStats& site : table.sites) {
    const Labels labels = with(pool, "site", site.name);
    // checkins, not acquires: a counter must never go down, and a lease
    // still out would count now and leave the count when it comes back.
    out.counter("poolscope_site_acquires_total",
                "Checkouts from the pool, by call site, counted when the lease comes back.", labels,
                number(site.checkins));
    out.counter("poolscope_site_reuses_total",
                "Nested acquires sharing the thread's lease, by call site.", labels,
                number(site.reuses));
    out.counter("poolscope_site_usage_seconds_total",
                "Seconds connections were held, by call site.", labels, seconds(site.total_hold));
    out.counter("poolscope_site_timeouts_total", "Checkouts that timed out, by call site.", labels,
                number(site.timeouts));
    out.counter("poolscope_site_leaks_total", "Leases reported as leaked, by call site.", labels,
                number(site.leaks));
  }
  out.gauge("poolscope_sites_folded",
            "Distinct call sites counted under site=\"other\" (past max_sites).", pool,
            number(table.folded_sites));
}

void add_cache_families(FamilyBuilder& out, const Snapshot::CacheEntry& entry) {
  const cache::CacheStats& s = entry.stats;
  const Labels cache{{"cache", entry.name}, {"pool", entry.pool}};
  const std::string req_help = "Cache lookups, by result.";
  out.counter("poolscope_cache_requests_total", req_help, with(cache, "result", "hit"),
              number(s.hits));
  out.counter("poolscope_cache_requests_total", req_help, with(cache, "result", "miss"),
              number(s.misses));
  const std::string load_help = "Loader runs, by outcome.";
  out.counter("poolscope_cache_loads_total", load_help, with(cache, "outcome", "success"),
              number(s.loads));
  out.counter("poolscope_cache_loads_total", load_help, with(cache, "outcome", "failure"),
              number(s.load_failures));
  out.counter("poolscope_cache_load_seconds_total", "Seconds spent in loaders.", cache,
              seconds(s.load_time));
  const std::string ev_help =
      "Entries removed, by reason: capacity (LRU), ttl (expired), invalidated.";
  out.counter("poolscope_cache_evictions_total", ev_help, with(cache, "reason", "capacity"),
              number(s.evictions_capacity));
  out.counter("poolscope_cache_evictions_total", ev_help, with(cache, "reason", "ttl"),
              number(s.evictions_ttl));
  out.counter("poolscope_cache_evictions_total", ev_help, with(cache, "reason", "invalidated"),
              number(s.evictions_invalidated));
  out.gauge("poolscope_cache_entries", "Entries in the cache.", cache, number(s.entries));
  out.gauge("poolscope_cache_bytes", "Approximate memory the entries take.", cache,
            number(s.approximate_bytes));
  out.counter("poolscope_cache_sessions_avoided_total",
              "Pool checkouts that cache hits made unnecessary.", cache,
              number(s.sessions_avoided));
}

}  // namespace

std::vector<MetricFamily> families_of(const Snapshot& snap) {
  FamilyBuilder out;
  for (const Snapshot::PoolEntry& p : snap.pools) add_pool_families(out, p);
  for (const tracing::PoolSites& t : snap.sites) add_site_families(out, t);
  for (const Snapshot::CacheEntry& c : snap.caches) add_cache_families(out, c);
  for (const Snapshot::TierEntry& t : snap.tiers) add_tier_families(out, t);
  out.gauge("poolscope_build_info", "poolscope's version; always 1.",
            {{"version", POOLSCOPE_VERSION}}, 1);
  return out.take();
}

}  // namespace poolscope::exporters::detail
