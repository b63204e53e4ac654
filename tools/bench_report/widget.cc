// The widget section: poolscope-load's dashboard render on PostgreSQL, a
// checkout per settings read, poolscope with and without its statement
// cache beside HikariCP's and SQLAlchemy's connection-per-read widgets and
// the floor under them all, the same reads on libpq alone.

#include "report.h"

namespace poolscope::bench_report {
namespace {

struct Impl {
  const char* key;
  const char* label;
};

constexpr Impl kImpls[] = {
    {"poolscope-cache", "poolscope `--mode pool`, statement cache 128"},
    {"poolscope-nocache", "poolscope `--mode pool`, `--statement-cache 0` (one-time queries)"},
    {"hikaricp", "HikariCP, `PreparedStatement` per read (pgjdbc prepareThreshold 5)"},
    {"sqlalchemy", "SQLAlchemy, `engine.connect()` + `text()` per read"},
    {"libpq", "libpq alone: a connection per thread, prepared once, no pool, no checkout"},
};

class Renders {
 public:
  explicit Renders(const std::vector<json>& lines) {
    for (const json& line : lines) {
      runs_[line["impl"].get<std::string>()][line["round"].get<int>()] = line["result"];
    }
  }
  Spread figure(const std::string& impl, const char* name, double scale = 1) const {
    Spread s;
    const auto it = runs_.find(impl);
    if (it == runs_.end()) return s;
    for (const auto& [round, r] : it->second) {
      if (r.contains(name) && r[name].is_number()) s.add(r[name].get<double>() * scale);
    }
    return s;
  }
  // renders/s of impl over base's, per round.
  Spread ratio(const std::string& impl, const std::string& base) const {
    Spread s;
    const auto a = runs_.find(impl);
    const auto b = runs_.find(base);
    if (a == runs_.end() || b == runs_.end()) return s;
    for (const auto& [round, r] : a->second) {
      const auto same = b->second.find(round);
      if (same == b->second.end()) continue;
      const double denominator = same->second["renders_per_s"].get<double>();
      if (denominator > 0) s.add(r["renders_per_s"].get<double>() / denominator);
    }
    return s;
  }
  bool has(const std::string& impl) const { return runs_.count(impl) != 0; }

 private:
  std::map<std::string, std::map<int, json>> runs_;
};

std::string rate_text(double r) { return fixed(r, r >= 100 ? 0 : 1); }

// A latency's median over the rounds, or "none" for a widget without it
// (libpq alone has no checkout).
std::string median_nanos(const Spread& s) { return s.empty() ? "none" : nanos(s.median()); }

}  // namespace

void widget_section(std::ostream& out, const Raw& raw, std::vector<Goal>& goals) {
  if (raw.widget.empty()) return;
  const Renders renders(raw.widget);
  const json& m = raw.meta;
  out << "## The widget on PostgreSQL\n\n"
      << "poolscope-load's dashboard widget: a render walks the 20 open transactions and builds "
         "an account per row, whose constructor reads api_key, api_secret and paper_account "
         "(60 reads per render), each read on a checkout of its own. "
      << m.value("widget_threads", 0) << " threads, a pool of " << m.value("pool", 8)
      << " (no overflow), " << m.value("widget_seconds", 0.0)
      << " s per run, rounds: " << m.value("rounds", 0)
      << ", in rotated order; HikariCP after its JIT warm-up. poolscope-load runs with "
         "tracing on, as shipped. Renders per second: median of the rounds (min - max); "
         "latencies: median of the rounds' percentiles.\n\n"
      << "| widget | renders/s | render p50 | render p99 | checkout p99 | vs HikariCP (min / "
         "median / max) |\n|---|---:|---:|---:|---:|---:|\n";
  for (const Impl& impl : kImpls) {
    if (!renders.has(impl.key)) continue;
    out << "| " << impl.label << " | "
        << spread_text(renders.figure(impl.key, "renders_per_s"), rate_text) << " | "
        << median_nanos(renders.figure(impl.key, "render_latency_p50_s", 1e9)) << " | "
        << median_nanos(renders.figure(impl.key, "render_latency_p99_s", 1e9)) << " | "
        << median_nanos(renders.figure(impl.key, "acquire_p99_s", 1e9)) << " | "
        << min_median_max(renders.ratio(impl.key, "hikaricp"), times) << " |\n";
  }
  const Spread cache_gain = renders.ratio("poolscope-cache", "poolscope-nocache");
  const Spread prepared = renders.figure("poolscope-cache", "statements_prepared");
  const Spread hits = renders.figure("poolscope-cache", "statement_cache_hits");
  const Spread failed = renders.figure("poolscope-cache", "failed");
  out << "\nThe statement cache's own gain (statement cache 128 / 0, same round): "
      << min_median_max(cache_gain, times) << ". With the cache, "
      << (prepared.empty() ? "n/a" : fixed(prepared.median(), 0))
      << " statements were prepared per run (one per connection) and "
      << (hits.empty() ? "n/a" : fixed(hits.median(), 0))
      << " reads hit them; failed renders: " << (failed.empty() ? "n/a" : fixed(failed.max(), 0))
      << ".\n\n";
  if (renders.has("libpq")) {
    out << "libpq alone does the least a widget can: the same 60 reads, one round trip "
           "each, with nothing between the thread and the server, so its renders/s are about "
           "the most this server gives. Each widget's renders/s over libpq alone's, "
           "same round (min / median / max): poolscope `--mode pool` "
        << min_median_max(renders.ratio("poolscope-cache", "libpq"), times) << ", HikariCP "
        << min_median_max(renders.ratio("hikaricp", "libpq"), times)
        << ". A widget that sends each read as a round trip of its own does at least libpq "
           "alone's work, so `--mode pool` at 1.5x HikariCP needs HikariCP at 0.67x of libpq "
           "alone or below.\n\n";
  }
  const Spread goal = renders.ratio("poolscope-cache", "hikaricp");
  goals.push_back(
      {"the widget: `--mode pool` at least 1.5x HikariCP's connection-per-read "
       "widget, worst round",
       goal.empty() ? "n/a" : min_median_max(goal, times),
       goal.empty() ? std::nullopt : std::optional<bool>(goal.min() >= 1.5)});
}

}  // namespace poolscope::bench_report
