#include "report.h"

#include <algorithm>
#include <chrono>
#include <string>

#include "poolscope/base/duration_text.h"

namespace poolscope::load {
namespace {

void row(std::FILE* out, const char* label, const std::string& value) {
  std::fprintf(out, "  %-22s %s\n", label, value.c_str());
}

std::string number(double v, int decimals) {
  char text[48];
  std::snprintf(text, sizeof text, "%.*f", decimals, v);
  return text;
}

double percent(std::uint64_t part, std::uint64_t whole) {
  return whole > 0 ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0;
}

void print_counts(std::FILE* out, const RunResult& r) {
  row(out, "renders", std::to_string(r.renders) + "  (" + number(r.renders_per_s(), 1) + "/s)");
  std::string failed = failed_text(r.failed(), r.attempts());
  if (r.failed() > 0) {
    failed.pop_back();  // the ')'
    failed += ": " + std::to_string(r.failed_timeouts) + " by checkout timeout, " +
              std::to_string(r.failed_errors) + " by other errors)";
  }
  row(out, "failed", failed);
  row(out, "render latency", latency_text(r.render_latency));
  const std::string per = r.failed() > 0 ? "  (per attempt)" : "";
  row(out, r.mode == "naive" ? "connections/render" : "checkouts/render",
      number(r.per_render(r.checkouts), 2) + per);
  row(out, "reuses/render", number(r.per_render(r.reuses), 2) + per);
  row(out, "connections opened", std::to_string(r.connections_opened));
  row(out, r.mode == "naive" ? "connect p50 / p99" : "checkout p50 / p99",
      duration_text(r.acquire_p50_s) + " / " + duration_text(r.acquire_p99_s));
  row(out, "timeouts", std::to_string(r.timeouts) + "  (checkouts that timed out)");
  row(out, "database loads",
      std::to_string(r.database_loads) + "  (" + std::to_string(r.distinct_keys) +
          " distinct keys)");
  if (!r.first_error.empty()) row(out, "first error", r.first_error);
}

void print_caches(std::FILE* out, const RunResult& r) {
  if (r.caches.empty()) return;
  row(out, "sessions avoided",
      std::to_string(r.sessions_avoided) + "  (" + number(r.per_render(r.sessions_avoided), 2) +
          " per render)");
  for (const cache::CacheStats& c : r.caches) {
    row(out, ("cache " + c.name).c_str(),
        std::to_string(c.hits) + " hits, " + std::to_string(c.misses) + " misses (" +
            number(100 * c.hit_ratio(), 3) + "% hits), " + std::to_string(c.loads) + " loads, " +
            std::to_string(c.sessions_avoided) + " sessions avoided");
  }
}

void print_waits_and_invariants(std::FILE* out, const RunResult& r) {
  if (r.waits > 0 || r.scenario == "oversubscribe") {
    // Of the acquires that got a connection or timed out: a wait that timed
    // out is a wait too.
    row(out, "waits",
        std::to_string(r.waits) + "  (" + number(percent(r.waits, r.acquire_attempts()), 1) +
            "% of " + std::to_string(r.acquire_attempts()) + " acquires, " +
            duration_text(r.waits > 0 ? r.wait_total_s / static_cast<double>(r.waits) : 0) +
            " on average)");
    row(out, "most open / pending",
        std::to_string(r.max_open_seen) + " / " + std::to_string(r.max_pending_seen));
  }
  if (r.invariants_checked) {
    std::string text = r.invariant_violations.empty() ? "held" : "VIOLATED:";
    for (const std::string& v : r.invariant_violations) text += " " + v + ";";
    row(out, "pool invariants", text);
  }
  if (r.scenario == "settings-write") {
    row(out, "settings writes", std::to_string(r.writes));
    row(out, "stale reads", std::to_string(r.stale_reads) + "  (reads older than the last save)");
  }
  print_staleness(out, r);
}

std::string seconds_spread(std::vector<double> s) {
  if (s.empty()) return "-";
  std::sort(s.begin(), s.end());
  return "median " + duration_text(s[(s.size() - 1) / 2]) + ", max " + duration_text(s.back());
}

void print_chaos(std::FILE* out, const RunResult& r) {
  if (!r.chaos) return;
  const ChaosFigures& c = *r.chaos;
  row(out, "backends killed",
      std::to_string(c.backends_terminated) + " in " + std::to_string(c.kills) + " rounds" +
          (c.kill_failures > 0 ? " (" + std::to_string(c.kill_failures) + " rounds could not run)"
                               : ""));
  row(out, "server restarts",
      std::to_string(c.restarts) + "  (taking " + seconds_spread(c.restart_s) + ")" +
          (c.restart_failures > 0 ? ", " + std::to_string(c.restart_failures) + " failed" : ""));
  row(out, "recovery after a kill",
      seconds_spread(c.kill_recovery_s) + "  (" + std::to_string(c.kill_recovery_s.size()) +
          " kills)");
  row(out, "recovery after restart",
      seconds_spread(c.restart_recovery_s) + "  (" + std::to_string(c.restart_recovery_s.size()) +
          " restarts)");
  row(out, "unrecovered faults",
      std::to_string(c.unrecovered) + "  (the next fault came first)" +
          (c.recovered_at_end ? ""
                              : "; NOT RECOVERED from the last one within " +
                                    duration_text(r.chaos_recovery_wait_s)));
}

void print_sites(std::FILE* out, const RunResult& r) {
  std::fprintf(out, "\n  top call sites (by checkouts)\n");
  std::fprintf(out, "    %-36s %10s %8s %9s %6s %10s %10s %5s\n", "site", "checkouts", "/render",
               "reuses", "opened", "avg hold", "max hold", "leaks");
  int shown = 0;
  for (const tracing::SiteStats& s : r.sites) {
    if (shown == 5 || (s.acquires == 0 && s.reuses == 0)) continue;
    ++shown;
    const double avg = s.acquires > 0 ? std::chrono::duration<double>(s.total_hold).count() /
                                            static_cast<double>(s.acquires)
                                      : 0;
    std::fprintf(out, "    %-36s %10llu %8.2f %9llu %6llu %10s %10s %5llu\n", s.name.c_str(),
                 static_cast<unsigned long long>(s.acquires), r.per_render(s.acquires),
                 static_cast<unsigned long long>(s.reuses),
                 static_cast<unsigned long long>(s.connections_opened), duration_text(avg).c_str(),
                 duration_text(std::chrono::duration<double>(s.max_hold).count()).c_str(),
                 static_cast<unsigned long long>(s.leaks));
  }
}

void print_tracing(std::FILE* out, const RunResult& r) {
  if (!r.traced) return;
  row(out, "churn warnings",
      std::to_string(r.tracer.churn_warnings) +
          (r.churn_threshold > 0 ? "  (loops by shape, and over " + number(r.churn_threshold, 0) +
                                       " acquires/s at one site)"
                                 : std::string("  (loops found by their shape)")));
  row(out, "leaks reported",
      std::to_string(r.tracer.leaks_reported) + "  (" + std::to_string(r.tracer.leaks_returned) +
          " came back later)");
  print_sites(out, r);
}

nlohmann::json sites_json(const RunResult& r) {
  nlohmann::json sites = nlohmann::json::array();
  for (const tracing::SiteStats& s : r.sites) {
    sites.push_back({{"site", s.name},
                     {"acquires", s.acquires},
                     {"acquires_per_render", r.per_render(s.acquires)},
                     {"reuses", s.reuses},
                     {"connections_opened", s.connections_opened},
                     {"total_hold_s", std::chrono::duration<double>(s.total_hold).count()},
                     {"max_hold_s", std::chrono::duration<double>(s.max_hold).count()},
                     {"timeouts", s.timeouts},
                     {"leaks", s.leaks}});
  }
  return sites;
}

nlohmann::json chaos_json(const RunResult& r) {
  const ChaosFigures& c = *r.chaos;
  const auto spread = [](std::vector<double> s) {
    std::sort(s.begin(), s.end());
    return nlohmann::json{{"count", s.size()},
                          {"median_s", s.empty() ? 0.0 : s[(s.size() - 1) / 2]},
                          {"max_s", s.empty() ? 0.0 : s.back()}};
  };
  return {{"kills", c.kills},
          {"backends_terminated", c.backends_terminated},
          {"kill_failures", c.kill_failures},
          {"restarts", c.restarts},
          {"restart_failures", c.restart_failures},
          {"restart_duration", spread(c.restart_s)},
          {"recovery_after_kill", spread(c.kill_recovery_s)},
          {"recovery_after_restart", spread(c.restart_recovery_s)},
          {"unrecovered", c.unrecovered},
          {"recovered_at_end", c.recovered_at_end},
          {"recovery_wait_s", r.chaos_recovery_wait_s}};
}

nlohmann::json caches_json(const RunResult& r) {
  nlohmann::json caches = nlohmann::json::array();
  for (const cache::CacheStats& c : r.caches) {
    caches.push_back({{"cache", c.name},
                      {"hits", c.hits},
                      {"misses", c.misses},
                      {"hit_ratio", c.hit_ratio()},
                      {"loads", c.loads},
                      {"load_failures", c.load_failures},
                      {"entries", c.entries},
                      {"evictions_invalidated", c.evictions_invalidated},
                      {"sessions_avoided", c.sessions_avoided}});
  }
  return caches;
}

// The figures every run has, whatever its mode and scenario.
nlohmann::json counts_json(const RunResult& r) {
  nlohmann::json out = {
      {"scenario", r.scenario},
      {"interrupted", r.interrupted},
      {"mode", r.mode},
      {"backend", r.backend},
      {"url", r.url},
      {"threads", r.threads},
      {"pool_size", r.pool_size},
      {"max_overflow", r.max_overflow},
      {"transaction_pooler", r.transaction_pooler},
      {"statement_cache_size", r.statement_cache_size},
      {"statements_prepared", r.statements_prepared},
      {"statement_cache_hits", r.statement_cache_hits},
      {"duration_s", r.duration_s},
      {"attempts", r.attempts()},
      {"renders", r.renders},
      {"renders_per_s", r.renders_per_s()},
      {"failed", r.failed()},
      {"failed_pct", percent(r.failed(), r.attempts())},
      {"failed_timeouts", r.failed_timeouts},
      {"failed_errors", r.failed_errors},
      {"errors", r.failed()},
      {"checkouts", r.checkouts},
      {"checkouts_per_render", r.per_render(r.checkouts)},
      {"reuses", r.reuses},
      {"reuses_per_render", r.per_render(r.reuses)},
      {"settings_reads_per_render", kReadsPerRender},
      {"connections_opened", r.connections_opened},
      {"acquire_samples", r.acquire_samples},
      {"acquire_p50_s", r.acquire_p50_s},
      {"acquire_p99_s", r.acquire_p99_s},
      {"timeouts", r.timeouts},
      {"database_loads", r.database_loads},
      {"distinct_keys", r.distinct_keys},
      {"redis_hits", r.redis_hits},
      {"first_error", r.first_error},
  };
  add_render_latency(out, r.render_latency);
  return out;
}

}  // namespace

std::string failed_text(std::uint64_t failed, std::uint64_t attempts) {
  return std::to_string(failed) + "  (" + number(percent(failed, attempts), 3) + "% of " +
         std::to_string(attempts) + " attempts)";
}

std::string latency_text(const LatencyHistogram& l) {
  if (l.count() == 0) return "-  (no render finished)";
  return "p50 " + duration_text(l.quantile_seconds(0.50)) + ", p90 " +
         duration_text(l.quantile_seconds(0.90)) + ", p99 " +
         duration_text(l.quantile_seconds(0.99)) + ", max " + duration_text(l.max_seconds());
}

void add_render_latency(nlohmann::json& out, const LatencyHistogram& l) {
  out["render_latency_p50_s"] = l.quantile_seconds(0.50);
  out["render_latency_p90_s"] = l.quantile_seconds(0.90);
  out["render_latency_p99_s"] = l.quantile_seconds(0.99);
  out["render_latency_max_s"] = l.max_seconds();
}

void print_summary(std::FILE* out, const RunResult& r) {
  std::fprintf(out, "\npoolscope-load: %s scenario, mode %s, %s, %d threads, %.1f s%s\n",
               r.scenario.c_str(), r.mode.c_str(), r.backend.c_str(), r.threads, r.duration_s,
               r.interrupted ? " (interrupted)" : "");
  row(out, "database", r.url);
  if (r.mode != "naive") {
    row(out, "pool",
        "size " + std::to_string(r.pool_size) + " + overflow " + std::to_string(r.max_overflow) +
            (r.transaction_pooler ? "  (behind a transaction pooler)" : ""));
  }
  print_counts(out, r);
  print_caches(out, r);
  print_redis(out, r);
  print_waits_and_invariants(out, r);
  print_chaos(out, r);
  print_tracing(out, r);
  std::fflush(out);
}

nlohmann::json to_json(const RunResult& r) {
  nlohmann::json out = counts_json(r);
  out["waits"] = r.waits;
  out["wait_total_s"] = r.wait_total_s;
  out["max_open_seen"] = r.max_open_seen;
  out["max_pending_seen"] = r.max_pending_seen;
  if (r.invariants_checked) {
    out["invariants_ok"] = r.invariant_violations.empty();
    out["invariant_violations"] = r.invariant_violations;
  }
  if (!r.caches.empty()) {
    out["caches"] = caches_json(r);
    out["sessions_avoided"] = r.sessions_avoided;
    out["sessions_avoided_per_render"] = r.per_render(r.sessions_avoided);
  }
  if (r.scenario == "settings-write") {
    out["writes"] = r.writes;
    out["stale_reads"] = r.stale_reads;
  }
  add_redis_json(out, r);
  if (r.chaos) out["chaos"] = chaos_json(r);
  // Written in every mode, so a script need not ask first; untraced (naive)
  // runs have no sites and nothing reported, and no thresholds.
  out["traced"] = r.traced;
  out["sites"] = sites_json(r);
  out["folded_sites"] = r.folded_sites;
  out["churn_warnings"] = r.tracer.churn_warnings;
  out["leaks_reported"] = r.tracer.leaks_reported;
  out["leaks_returned"] = r.tracer.leaks_returned;
  if (r.traced) {
    out["churn_threshold"] = r.churn_threshold;
    out["leak_threshold_s"] = r.leak_threshold_s;
  }
  return out;
}

std::vector<std::string> failures_of(const RunResult& r) {
  std::vector<std::string> out;
  // Under chaos renders fail by design; what must hold is that the widget
  // comes back, and the invariants.
  if (r.chaos && !r.chaos->recovered_at_end) {
    out.push_back("no render succeeded after the last fault within " +
                  duration_text(r.chaos_recovery_wait_s));
  }
  if (r.chaos && r.chaos->restart_failures > 0) {
    out.push_back("the restart command failed " + std::to_string(r.chaos->restart_failures) +
                  " of " + std::to_string(r.chaos->restarts) + " times");
  }
  if (r.failed() > 0 && !r.chaos) {
    out.push_back(std::to_string(r.failed()) + " of " + std::to_string(r.attempts()) +
                  " render attempts failed (" + std::to_string(r.failed_timeouts) +
                  " by checkout timeout, " + std::to_string(r.failed_errors) +
                  " by other errors); first: " + r.first_error);
  }
  if (r.stale_reads > 0) {
    out.push_back(std::to_string(r.stale_reads) + " reads were older than the last committed save");
  }
  if (!r.invariant_violations.empty()) {
    out.push_back("the pool's invariants were violated (see the summary)");
  }
  return out;
}

}  // namespace poolscope::load
