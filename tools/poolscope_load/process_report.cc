#include <algorithm>

#include "processes.h"
#include "report.h"

namespace poolscope::load {
namespace {

// Summed over the processes that reported.
const char* const kSummed[] = {
    "attempts", "renders",     "failed", "failed_timeouts",    "failed_errors",  "errors",
    "timeouts", "checkouts",   "reuses", "connections_opened", "database_loads", "redis_hits",
    "writes",   "stale_reads", "waits",  "late_reads"};

// Summed from each process's "redis" object (--redis).
const char* const kRedisSummed[] = {"misses",
                                    "fallback_loads",
                                    "lock_acquired",
                                    "lock_waited",
                                    "lock_expired",
                                    "calls",
                                    "errors",
                                    "timeouts",
                                    "skipped",
                                    "breaker_opened",
                                    "invalidations_published",
                                    "invalidations_received"};

std::uint64_t count(const nlohmann::json& j, const char* key) {
  return j.is_object() ? j.value(key, std::uint64_t{0}) : 0;
}

double ratio(double value, double base) { return base > 0 ? value / base : 0; }

LatencyHistogram merged_latency(const std::vector<ProcessReport>& reports) {
  LatencyHistogram latency;
  for (const ProcessReport& p : reports) latency.merge(p.render_latency);
  return latency;
}

// The tier's figures of every process, added up (null without --redis).
nlohmann::json redis_totals(const std::vector<ProcessReport>& reports) {
  nlohmann::json t;
  for (const ProcessReport& p : reports) {
    if (!p.result.is_object() || !p.result.contains("redis")) continue;
    const nlohmann::json& r = p.result["redis"];
    if (t.is_null()) {
      t = {{"url", r.value("url", "")}};
      for (const char* key : kRedisSummed) t[key] = std::uint64_t{0};
    }
    for (const char* key : kRedisSummed) t[key] = t[key].get<std::uint64_t>() + count(r, key);
  }
  return t;
}

nlohmann::json totals_of(const ProgramOptions& options, const std::vector<ProcessReport>& reports) {
  nlohmann::json t = nlohmann::json::object();
  for (const char* key : kSummed) t[key] = std::uint64_t{0};
  double renders_per_s = 0, duration_s = 0;
  std::uint64_t distinct_keys = 0;
  bool invariants_ok = true, interrupted = false;
  for (const ProcessReport& p : reports) {
    if (p.result.is_null()) continue;
    for (const char* key : kSummed) t[key] = t[key].get<std::uint64_t>() + count(p.result, key);
    renders_per_s += p.result.value("renders_per_s", 0.0);
    duration_s = std::max(duration_s, p.result.value("duration_s", 0.0));
    distinct_keys = std::max(distinct_keys, count(p.result, "distinct_keys"));
    invariants_ok = invariants_ok && p.result.value("invariants_ok", true);
    interrupted = interrupted || p.result.value("interrupted", false);
  }
  const std::uint64_t attempts = t["attempts"], failed = t["failed"];
  t["processes"] = options.processes;
  t["threads_per_process"] = options.run.threads;
  t["scenario"] = std::string(to_string(options.run.scenario));
  t["mode"] = std::string(to_string(options.run.mode));
  t["duration_s"] = duration_s;
  t["renders_per_s"] = renders_per_s;
  t["failed_pct"] = attempts > 0 ? 100.0 * static_cast<double>(failed) / attempts : 0.0;
  t["checkouts_per_render"] = ratio(t["checkouts"].get<double>(), static_cast<double>(attempts));
  t["distinct_keys"] = distinct_keys;
  t["database_loads_per_key"] =
      ratio(t["database_loads"].get<double>(), static_cast<double>(distinct_keys));
  t["invariants_ok"] = invariants_ok;
  if (nlohmann::json redis = redis_totals(reports); !redis.is_null()) t["redis"] = std::move(redis);
  t["interrupted"] = interrupted;
  add_render_latency(t, merged_latency(reports));
  return t;
}

nlohmann::json per_process_json(const ProcessReport& p) {
  nlohmann::json j = p.result.is_null() ? nlohmann::json::object() : p.result;
  j["process"] = p.index;
  j["pid"] = p.pid;
  j["exit_status"] = p.exit_status;
  if (!p.error.empty()) j["error"] = p.error;
  return j;
}

void print_process_row(std::FILE* out, const std::string& name, const std::string& pid,
                       const nlohmann::json& j) {
  std::fprintf(out, "  %-8s %8s %10llu %10.1f %8llu %8llu %11llu %10llu %10llu\n", name.c_str(),
               pid.c_str(), static_cast<unsigned long long>(count(j, "renders")),
               j.value("renders_per_s", 0.0), static_cast<unsigned long long>(count(j, "failed")),
               static_cast<unsigned long long>(count(j, "connections_opened")),
               static_cast<unsigned long long>(count(j, "checkouts")),
               static_cast<unsigned long long>(count(j, "database_loads")),
               static_cast<unsigned long long>(count(j, "redis_hits")));
}

void print_table(std::FILE* out, const ProgramOptions& options,
                 const std::vector<ProcessReport>& reports, const nlohmann::json& totals) {
  std::string url, backend;
  for (const ProcessReport& p : reports) {
    if (!p.result.is_null()) {
      url = p.result.value("url", "");
      backend = p.result.value("backend", "");
    }
  }
  std::fprintf(
      out, "\npoolscope-load: %s scenario, mode %s, %s, %d processes x %d threads, %.1f s%s\n",
      totals["scenario"].get<std::string>().c_str(), totals["mode"].get<std::string>().c_str(),
      backend.c_str(), options.processes, options.run.threads, totals["duration_s"].get<double>(),
      totals["interrupted"].get<bool>() ? " (interrupted)" : "");
  std::fprintf(out, "  %-22s %s\n", "database", url.c_str());
  if (options.run.mode != Mode::kNaive) {
    std::fprintf(out, "  %-22s size %zu + overflow %zu%s\n", "pool (each process)",
                 options.run.pool_size, options.run.max_overflow,
                 options.run.transaction_pooler ? "  (behind a transaction pooler)" : "");
  }
  std::fprintf(out, "\n  %-8s %8s %10s %10s %8s %8s %11s %10s %10s\n", "process", "pid", "renders",
               "renders/s", "failed", "opened", "checkouts", "db loads", "redis hits");
  for (const ProcessReport& p : reports) {
    print_process_row(out, "p" + std::to_string(p.index), std::to_string(p.pid), p.result);
    if (!p.error.empty()) std::fprintf(out, "  %-8s %s\n", "", p.error.c_str());
  }
  print_process_row(out, "total", "", totals);
  std::fprintf(out, "\n");
}

void print_totals(std::FILE* out, const nlohmann::json& t, const LatencyHistogram& latency) {
  auto row = [out](const char* label, const std::string& value) {
    std::fprintf(out, "  %-22s %s\n", label, value.c_str());
  };
  row("failed", failed_text(t["failed"], t["attempts"]));
  char text[160];
  std::snprintf(text, sizeof text, "%llu  (%llu distinct keys, %.1f per key)",
                static_cast<unsigned long long>(t["database_loads"].get<std::uint64_t>()),
                static_cast<unsigned long long>(t["distinct_keys"].get<std::uint64_t>()),
                t["database_loads_per_key"].get<double>());
  row("database loads", text);
  row("render latency", latency_text(latency) + "  (all processes)");
  if (t.contains("redis")) {
    const nlohmann::json& r = t["redis"];
    std::snprintf(text, sizeof text, "%llu hits  (%llu errors, %llu timeouts, %llu lock waits)",
                  static_cast<unsigned long long>(t["redis_hits"].get<std::uint64_t>()),
                  static_cast<unsigned long long>(count(r, "errors")),
                  static_cast<unsigned long long>(count(r, "timeouts")),
                  static_cast<unsigned long long>(count(r, "lock_waited")));
    row("redis", r.value("url", "") + "  " + text);
  }
  if (t.contains("staleness_saves")) {
    row("stale reads",
        std::to_string(t["stale_reads"].get<std::uint64_t>()) + "  (past --stale-window; " +
            std::to_string(t["late_reads"].get<std::uint64_t>()) + " late within it)");
    row("staleness window", t.value("staleness_text", ""));
  }
  row("pool invariants", t["invariants_ok"].get<bool>() ? "held in every process"
                                                        : "VIOLATED (see per_process in the JSON)");
  std::fflush(out);
}

}  // namespace

ProgramOutcome combine(const ProgramOptions& options, const std::vector<ProcessReport>& reports,
                       const CommitLog::Windows* windows, std::FILE* tables) {
  ProgramOutcome outcome;
  nlohmann::json json = totals_of(options, reports);
  if (windows != nullptr) {
    add_staleness_json(json, windows->ms, windows->unseen);
    json["staleness_text"] = staleness_text(windows->ms, windows->unseen);
  }
  nlohmann::json per_process = nlohmann::json::array();
  for (const ProcessReport& p : reports) {
    per_process.push_back(per_process_json(p));
    const std::string name = "process p" + std::to_string(p.index) + ": ";
    for (const std::string& f : p.failures) outcome.failures.push_back(name + f);
    if (!p.error.empty()) outcome.failures.push_back(name + p.error);
  }
  print_table(tables, options, reports, json);
  print_totals(tables, json, merged_latency(reports));
  outcome.interrupted = json["interrupted"].get<bool>() || stop_requested();
  if (outcome.interrupted) outcome.interrupted_note = "interrupted before the duration was up";
  json.erase("staleness_text");  // for the table only
  json["per_process"] = std::move(per_process);
  outcome.json = std::move(json);
  return outcome;
}

}  // namespace poolscope::load
