// The Redis tier's and the staleness window's parts of poolscope-load's
// summary and JSON (report.h), for one run and for --processes' totals.

#include <cmath>

#include "report.h"

namespace poolscope::load {
namespace {

void row(std::FILE* out, const char* label, const std::string& value) {
  std::fprintf(out, "  %-22s %s\n", label, value.c_str());
}

std::string ms_text(double ms) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f ms", ms);
  return text;
}

}  // namespace

double quantile_of_sorted(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  // Nearest rank: the smallest value with at least q of the values at or below it.
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[rank == 0 ? 0 : rank - 1];
}

void add_staleness_json(nlohmann::json& out, const std::vector<double>& sorted_ms,
                        std::uint64_t unseen) {
  out["staleness_saves"] = sorted_ms.size();
  out["staleness_unseen"] = unseen;
  out["staleness_p50_ms"] = quantile_of_sorted(sorted_ms, 0.50);
  out["staleness_p99_ms"] = quantile_of_sorted(sorted_ms, 0.99);
  out["staleness_max_ms"] = sorted_ms.empty() ? 0.0 : sorted_ms.back();
}

std::string staleness_text(const std::vector<double>& sorted_ms, std::uint64_t unseen) {
  if (sorted_ms.empty()) return "-  (no save was seen by every process)";
  return "p50 " + ms_text(quantile_of_sorted(sorted_ms, 0.50)) + ", p99 " +
         ms_text(quantile_of_sorted(sorted_ms, 0.99)) + ", max " + ms_text(sorted_ms.back()) +
         "  (" + std::to_string(sorted_ms.size()) + " saves, from save to the last process " +
         "reading it; " + std::to_string(unseen) + " not yet seen by all at the end)";
}

void print_redis(std::FILE* out, const RunResult& r) {
  if (!r.redis) return;
  const RedisFigures& f = *r.redis;
  row(out, "redis", f.url + "  (" + f.state + " at the end)");
  row(out, "redis hits / misses",
      std::to_string(f.redis_hits) + " / " + std::to_string(f.redis_misses) + "  (" +
          std::to_string(f.fallback_loads) + " loads without Redis while it was unavailable)");
  row(out, "redis load lock",
      std::to_string(f.lock_acquired) + " taken, " + std::to_string(f.lock_waited) +
          " waited for another process's value, " + std::to_string(f.lock_expired) + " expired");
  row(out, "redis calls",
      std::to_string(f.calls) + "  (" + std::to_string(f.errors) + " errors, " +
          std::to_string(f.timeouts) + " timeouts, " + std::to_string(f.skipped) +
          " skipped by the breaker, opened " + std::to_string(f.breaker_opened) + " times)");
  row(out, "invalidations",
      std::to_string(f.invalidations_published) + " published, " +
          std::to_string(f.invalidations_received) + " received from other processes");
}

void print_staleness(std::FILE* out, const RunResult& r) {
  if (r.scenario != "settings-write") return;
  row(out, "late reads",
      std::to_string(r.late_reads) + "  (another process's previous value, within " +
          ms_text(r.stale_window_s * 1000) + " of its save)");
  if (r.sightings.count() > 0) {
    row(out, "first read of a save",
        "p50 " + ms_text(r.sightings.quantile_seconds(0.5) * 1000) + ", p99 " +
            ms_text(r.sightings.quantile_seconds(0.99) * 1000) + ", max " +
            ms_text(r.sightings.max_seconds() * 1000) + "  (after the save began, here)");
  }
  if (!r.staleness_ms.empty() || r.staleness_unseen > 0) {
    row(out, "staleness window", staleness_text(r.staleness_ms, r.staleness_unseen));
  }
}

void add_redis_json(nlohmann::json& out, const RunResult& r) {
  if (r.scenario == "settings-write") {
    out["late_reads"] = r.late_reads;
    out["stale_window_s"] = r.stale_window_s;
    out["sighting_count"] = r.sightings.count();
    out["sighting_p50_ms"] = r.sightings.quantile_seconds(0.5) * 1000;
    out["sighting_p99_ms"] = r.sightings.quantile_seconds(0.99) * 1000;
    out["sighting_max_ms"] = r.sightings.max_seconds() * 1000;
    // A run of one process: its windows are its own sightings.
    if (!r.staleness_ms.empty() || r.staleness_unseen > 0) {
      add_staleness_json(out, r.staleness_ms, r.staleness_unseen);
    }
  }
  if (!r.redis) return;
  const RedisFigures& f = *r.redis;
  out["redis"] = {{"url", f.url},
                  {"state", f.state},
                  {"hits", f.redis_hits},
                  {"misses", f.redis_misses},
                  {"database_loads", f.database_loads},
                  {"fallback_loads", f.fallback_loads},
                  {"lock_acquired", f.lock_acquired},
                  {"lock_waited", f.lock_waited},
                  {"lock_expired", f.lock_expired},
                  {"calls", f.calls},
                  {"errors", f.errors},
                  {"timeouts", f.timeouts},
                  {"skipped", f.skipped},
                  {"breaker_opened", f.breaker_opened},
                  {"breaker_closed", f.breaker_closed},
                  {"invalidations_published", f.invalidations_published},
                  {"invalidations_received", f.invalidations_received},
                  {"subscriber_flushes", f.subscriber_flushes}};
}

}  // namespace poolscope::load
