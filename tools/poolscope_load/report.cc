#include "report.h"

#include <chrono>
#include <map>
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

}  // namespace

void print_summary(std::FILE* out, const RunResult& r) {
  std::fprintf(out, "\npoolscope-load: %s scenario, mode %s, %s, %d threads, %.1f s%s\n",
               r.scenario.c_str(), r.mode.c_str(), r.backend.c_str(), r.threads, r.duration_s,
               r.interrupted ? " (interrupted)" : "");
  row(out, "database", r.url);
  if (r.mode != "naive") {
    row(out, "pool",
        "size " + std::to_string(r.pool_size) + " + overflow " + std::to_string(r.max_overflow));
  }
  row(out, "renders", std::to_string(r.renders) + "  (" + number(r.renders_per_s(), 1) + "/s)");
  row(out, r.mode == "naive" ? "connections/render" : "checkouts/render",
      number(r.per_render(r.checkouts), 2));
  row(out, "reuses/render", number(r.per_render(r.reuses), 2));
  row(out, "connections opened", std::to_string(r.connections_opened));
  row(out, r.mode == "naive" ? "connect p50 / p99" : "checkout p50 / p99",
      duration_text(r.acquire_p50_s) + " / " + duration_text(r.acquire_p99_s));
  row(out, "timeouts", std::to_string(r.timeouts));
  row(out, "errors", std::to_string(r.errors));
  if (!r.first_error.empty()) row(out, "first error", r.first_error);
  if (!r.caches.empty()) {
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
  if (r.waits > 0 || r.scenario == "oversubscribe") {
    row(out, "waits",
        std::to_string(r.waits) + "  (" +
            number(r.checkouts > 0
                       ? 100.0 * static_cast<double>(r.waits) / static_cast<double>(r.checkouts)
                       : 0,
                   1) +
            "% of checkouts, " +
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
  if (r.traced) {
    row(out, "churn warnings",
        std::to_string(r.tracer.churn_warnings) + "  (threshold " + number(r.churn_threshold, 0) +
            " acquires/s at one site)");
    row(out, "leaks reported",
        std::to_string(r.tracer.leaks_reported) + "  (" + std::to_string(r.tracer.leaks_returned) +
            " came back later)");
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
                   static_cast<unsigned long long>(s.connections_opened),
                   duration_text(avg).c_str(),
                   duration_text(std::chrono::duration<double>(s.max_hold).count()).c_str(),
                   static_cast<unsigned long long>(s.leaks));
    }
  }
  std::fflush(out);
}

nlohmann::json to_json(const RunResult& r) {
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
  nlohmann::json out = {
      {"scenario", r.scenario},
      {"interrupted", r.interrupted},
      {"mode", r.mode},
      {"backend", r.backend},
      {"url", r.url},
      {"threads", r.threads},
      {"pool_size", r.pool_size},
      {"max_overflow", r.max_overflow},
      {"duration_s", r.duration_s},
      {"renders", r.renders},
      {"renders_per_s", r.renders_per_s()},
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
      {"errors", r.errors},
      {"first_error", r.first_error},
  };
  out["waits"] = r.waits;
  out["wait_total_s"] = r.wait_total_s;
  out["max_open_seen"] = r.max_open_seen;
  out["max_pending_seen"] = r.max_pending_seen;
  if (r.invariants_checked) {
    out["invariants_ok"] = r.invariant_violations.empty();
    out["invariant_violations"] = r.invariant_violations;
  }
  if (!r.caches.empty()) {
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
    out["caches"] = std::move(caches);
    out["sessions_avoided"] = r.sessions_avoided;
    out["sessions_avoided_per_render"] = r.per_render(r.sessions_avoided);
  }
  if (r.scenario == "settings-write") {
    out["writes"] = r.writes;
    out["stale_reads"] = r.stale_reads;
  }
  // Written in every mode, so a script need not ask first; untraced (naive)
  // runs have no sites and nothing reported, and no thresholds.
  out["traced"] = r.traced;
  out["sites"] = std::move(sites);
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

namespace {

double ratio(double value, double base) { return base > 0 ? value / base : 0; }

struct VsPool {
  double renders_per_s = 0;
  double checkouts_per_render = 0;
};

// Every run's figures as ratios of pool mode's, by mode; empty when pool
// mode did not run. The one place they are computed: the table, the JSON
// and (through the JSON) poolscope-bench-report all show these.
std::map<std::string, VsPool> ratios_vs_pool(const std::vector<RunResult>& results) {
  std::map<std::string, VsPool> out;
  const RunResult* base = nullptr;
  for (const RunResult& r : results) {
    if (r.mode == "pool") base = &r;
  }
  if (base == nullptr) return out;
  for (const RunResult& r : results) {
    out[r.mode] = {ratio(r.renders_per_s(), base->renders_per_s()),
                   ratio(r.per_render(r.checkouts), base->per_render(base->checkouts))};
  }
  return out;
}

std::vector<std::string> modes_not_run(const std::vector<RunResult>& results) {
  std::vector<std::string> out;
  for (Mode m : kCompareModes) {
    bool ran = false;
    for (const RunResult& r : results) ran = ran || r.mode == to_string(m);
    if (!ran) out.emplace_back(to_string(m));
  }
  return out;
}

}  // namespace

bool is_partial(const std::vector<RunResult>& results) {
  for (const RunResult& r : results) {
    if (r.interrupted) return true;
  }
  return !modes_not_run(results).empty();
}

void print_comparison(std::FILE* out, const std::vector<RunResult>& results) {
  if (results.empty()) {
    std::fprintf(out, "\npoolscope-load --compare: interrupted before any mode ran\n");
    std::fflush(out);
    return;
  }
  const auto ratios = ratios_vs_pool(results);
  std::fprintf(
      out, "\npoolscope-load --compare: widget scenario, %s, %d threads, %.1f s per mode\n",
      results.front().backend.c_str(), results.front().threads, results.front().duration_s);
  std::fprintf(out, "  %-7s %14s %10s %17s %16s %14s %12s\n", "mode", "renders/s", "vs pool",
               "checkouts/render", "sessions opened", "avoided/render", "checkout p99");
  for (const RunResult& r : results) {
    const auto it = ratios.find(r.mode);
    char vs_pool[32] = "n/a";
    if (it != ratios.end())
      std::snprintf(vs_pool, sizeof vs_pool, "%.2fx", it->second.renders_per_s);
    std::fprintf(out, "  %-7s %14.1f %10s %17.4f %16llu %14.2f %12s%s\n", r.mode.c_str(),
                 r.renders_per_s(), vs_pool, r.per_render(r.checkouts),
                 static_cast<unsigned long long>(r.connections_opened),
                 r.per_render(r.sessions_avoided), duration_text(r.acquire_p99_s).c_str(),
                 r.interrupted ? "  (interrupted)" : "");
  }
  if (is_partial(results)) {
    std::string missing;
    for (const std::string& m : modes_not_run(results))
      missing += (missing.empty() ? "" : ", ") + m;
    std::fprintf(out,
                 "  PARTIAL: interrupted%s%s; the modes did not run alike, so compare with care\n",
                 missing.empty() ? "" : "; not run: ", missing.c_str());
  }
  std::fflush(out);
}

nlohmann::json comparison_json(const std::vector<RunResult>& results) {
  nlohmann::json runs = nlohmann::json::array();
  for (const RunResult& r : results) runs.push_back(to_json(r));
  nlohmann::json ratios = nlohmann::json::object();
  for (const auto& [mode, vs] : ratios_vs_pool(results)) {
    ratios[mode] = {{"renders_per_s_vs_pool", vs.renders_per_s},
                    {"checkouts_per_render_vs_pool", vs.checkouts_per_render}};
  }
  return {{"compare", std::move(runs)},
          {"ratios", std::move(ratios)},
          {"partial", is_partial(results)},
          {"modes_not_run", modes_not_run(results)}};
}

}  // namespace poolscope::load
