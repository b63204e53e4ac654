// --compare: the widget scenario in every mode, in rounds. Each round runs
// every mode once, in a new random order, as scripts/bench.sh interleaves
// its benchmarks: a slow spell of a shared machine then lands on every mode
// alike rather than on whichever ran during it. Each mode is reported by its
// median run, with the spread (min / median / max renders/s) beside it, and
// its ratios against pool mode are medians over medians.

#include <algorithm>
#include <map>
#include <random>
#include <string>

#include "console.h"
#include "poolscope/base/duration_text.h"
#include "program.h"
#include "report.h"

namespace poolscope::load {
namespace {

inline constexpr Mode kCompareModes[] = {Mode::kNaive, Mode::kPool, Mode::kReuse, Mode::kCached};

struct CompareRun {
  int round = 0;
  RunResult result;
};

// One mode's runs, by renders/s.
struct ModeRuns {
  std::vector<const RunResult*> runs;  // sorted by renders_per_s

  const RunResult& median_run() const { return *runs[(runs.size() - 1) / 2]; }
  double min() const { return runs.front()->renders_per_s(); }
  double max() const { return runs.back()->renders_per_s(); }
  double median() const {
    const std::size_t n = runs.size();
    return n % 2 == 1 ? runs[n / 2]->renders_per_s()
                      : (runs[n / 2 - 1]->renders_per_s() + runs[n / 2]->renders_per_s()) / 2;
  }
};

// The modes that ran, in kCompareModes order.
std::map<std::string, ModeRuns> by_mode(const std::vector<CompareRun>& runs) {
  std::map<std::string, ModeRuns> out;
  for (const CompareRun& r : runs) out[r.result.mode].runs.push_back(&r.result);
  for (auto& [mode, m] : out) {
    std::sort(m.runs.begin(), m.runs.end(), [](const RunResult* a, const RunResult* b) {
      return a->renders_per_s() < b->renders_per_s();
    });
  }
  return out;
}

std::vector<std::string> modes_not_run(const std::map<std::string, ModeRuns>& modes) {
  std::vector<std::string> out;
  for (Mode m : kCompareModes) {
    if (!modes.contains(std::string(to_string(m)))) out.emplace_back(to_string(m));
  }
  return out;
}

double ratio(double value, double base) { return base > 0 ? value / base : 0; }

struct VsPool {
  double renders_per_s = 0;
  double checkouts_per_render = 0;
};

// Every mode's medians as ratios of pool mode's; empty when pool mode did
// not run. The one place they are computed: the table, the JSON and
// (through the JSON) poolscope-bench-report all show these.
std::map<std::string, VsPool> ratios_vs_pool(const std::map<std::string, ModeRuns>& modes) {
  std::map<std::string, VsPool> out;
  const auto base = modes.find("pool");
  if (base == modes.end()) return out;
  const RunResult& pool = base->second.median_run();
  for (const auto& [mode, m] : modes) {
    out[mode] = {ratio(m.median(), base->second.median()),
                 ratio(m.median_run().per_render(m.median_run().checkouts),
                       pool.per_render(pool.checkouts))};
  }
  return out;
}

void print_table(std::FILE* out, const std::vector<CompareRun>& runs, int repeats, bool partial) {
  const auto modes = by_mode(runs);
  const auto ratios = ratios_vs_pool(modes);
  const RunResult& first = runs.front().result;
  std::fprintf(out,
               "\npoolscope-load --compare: widget scenario, %s, %d threads, %d rounds of %.1f s "
               "per mode, modes in random order each round\n",
               first.backend.c_str(), first.threads, repeats, first.duration_s);
  std::fprintf(out, "  %-7s %5s %30s %9s %17s %16s %14s %12s %8s\n", "mode", "runs",
               "renders/s min / median / max", "vs pool", "checkouts/render", "sessions opened",
               "avoided/render", "render p99", "failed");
  for (Mode mode : kCompareModes) {
    const auto it = modes.find(std::string(to_string(mode)));
    if (it == modes.end()) continue;
    const ModeRuns& m = it->second;
    const RunResult& r = m.median_run();
    char spread[64], vs_pool[32] = "n/a";
    std::snprintf(spread, sizeof spread, "%.1f / %.1f / %.1f", m.min(), m.median(), m.max());
    if (const auto v = ratios.find(r.mode); v != ratios.end())
      std::snprintf(vs_pool, sizeof vs_pool, "%.2fx", v->second.renders_per_s);
    std::uint64_t failed = 0;
    for (const RunResult* each : m.runs) failed += each->failed();
    std::fprintf(out, "  %-7s %5zu %30s %9s %17.4f %16llu %14.2f %12s %8llu\n", r.mode.c_str(),
                 m.runs.size(), spread, vs_pool, r.per_render(r.checkouts),
                 static_cast<unsigned long long>(r.connections_opened),
                 r.per_render(r.sessions_avoided),
                 duration_text(r.render_latency.quantile_seconds(0.99)).c_str(),
                 static_cast<unsigned long long>(failed));
  }
  if (partial) {
    std::string missing;
    for (const std::string& m : modes_not_run(modes)) missing += (missing.empty() ? "" : ", ") + m;
    std::fprintf(out,
                 "  PARTIAL: interrupted%s%s; the modes did not run alike, so compare with care\n",
                 missing.empty() ? "" : "; not run: ", missing.c_str());
  }
  std::fflush(out);
}

// {"compare": [each mode's median run, with "runs" and the renders/s
// spread], "runs": [every run in the order run, with its "round"],
// "ratios": {mode: {"renders_per_s_vs_pool", "checkouts_per_render_vs_pool"}},
// "repeats", "partial", "modes_not_run"}.
nlohmann::json comparison_json(const std::vector<CompareRun>& runs, int repeats, bool partial) {
  const auto modes = by_mode(runs);
  nlohmann::json per_mode = nlohmann::json::array();
  for (Mode mode : kCompareModes) {
    const auto it = modes.find(std::string(to_string(mode)));
    if (it == modes.end()) continue;
    nlohmann::json j = to_json(it->second.median_run());
    j["runs"] = it->second.runs.size();
    j["renders_per_s_min"] = it->second.min();
    j["renders_per_s_median"] = it->second.median();
    j["renders_per_s_max"] = it->second.max();
    per_mode.push_back(std::move(j));
  }
  nlohmann::json all = nlohmann::json::array();
  for (const CompareRun& r : runs) {
    nlohmann::json j = to_json(r.result);
    j["round"] = r.round;
    all.push_back(std::move(j));
  }
  nlohmann::json ratios = nlohmann::json::object();
  for (const auto& [mode, vs] : ratios_vs_pool(modes)) {
    ratios[mode] = {{"renders_per_s_vs_pool", vs.renders_per_s},
                    {"checkouts_per_render_vs_pool", vs.checkouts_per_render}};
  }
  return {{"compare", std::move(per_mode)},
          {"runs", std::move(all)},
          {"ratios", std::move(ratios)},
          {"repeats", repeats},
          {"partial", partial},
          {"modes_not_run", modes_not_run(modes)}};
}

}  // namespace

ProgramOutcome run_comparison(const ProgramOptions& options, std::FILE* tables) {
  std::mt19937 shuffle(std::random_device{}());
  std::vector<CompareRun> runs;
  bool cut_short = false;
  for (int round = 1; round <= options.repeats && !cut_short; ++round) {
    std::vector<Mode> order(std::begin(kCompareModes), std::end(kCompareModes));
    std::shuffle(order.begin(), order.end(), shuffle);
    for (Mode mode : order) {
      if (stop_requested()) {
        cut_short = true;
        break;
      }
      RunOptions run_options = options.run;
      run_options.mode = mode;
      runs.push_back({round, run(run_options)});
      const RunResult& done = runs.back().result;
      char line[160];
      std::snprintf(
          line, sizeof line,
          "poolscope-load --compare: round %d of %d, %s mode: %.1f renders/s, %llu failed", round,
          options.repeats, done.mode.c_str(), done.renders_per_s(),
          static_cast<unsigned long long>(done.failed()));
      Console::instance().line(line);
      cut_short = done.interrupted;
      if (cut_short) break;
    }
  }
  ProgramOutcome outcome;
  outcome.interrupted = cut_short || stop_requested();
  if (runs.empty()) {
    std::fprintf(tables, "\npoolscope-load --compare: interrupted before any mode ran\n");
    outcome.json = comparison_json(runs, options.repeats, true);
    outcome.interrupted_note = "interrupted; the comparison is partial";
    return outcome;
  }
  for (const CompareRun& r : runs) {
    for (std::string& f : failures_of(r.result)) {
      outcome.failures.push_back(r.result.mode + " mode, round " + std::to_string(r.round) + ": " +
                                 f);
    }
  }
  print_table(tables, runs, options.repeats, outcome.interrupted);
  outcome.json = comparison_json(runs, options.repeats, outcome.interrupted);
  if (outcome.interrupted) outcome.interrupted_note = "interrupted; the comparison is partial";
  return outcome;
}

}  // namespace poolscope::load
