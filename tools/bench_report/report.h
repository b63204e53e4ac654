// poolscope-bench-report's parts: the raw results scripts/bench.sh leaves in
// docs/benchmarks-raw/ (JSON lines, one run per line, tagged with its
// round), the spread of a figure over rounds, and one function per section
// of docs/benchmarks.md. Single-threaded; every function throws
// std::runtime_error for a raw file it cannot read.

#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace poolscope::bench_report {

using nlohmann::json;

// One figure over the rounds: min, median and max of its values.
struct Spread {
  std::vector<double> values;

  bool empty() const noexcept { return values.empty(); }
  double min() const;
  double max() const;
  double median() const;
  void add(double v) { values.push_back(v); }
};

// Everything scripts/bench.sh measured.
struct Raw {
  json meta;                     // meta.json: settings and versions
  std::vector<json> contention;  // contention.jsonl
  std::vector<json> widget;      // widget.jsonl
  std::vector<json> cache_loop;  // cache-loop.jsonl
  std::vector<json> callgrind;   // callgrind.jsonl
  json bench;                    // bench.json: Google Benchmark's output
};

// Reads dir's files; a missing file leaves its part empty.
Raw read_raw(const std::string& dir);

// Text helpers: "1.23x", "123 ns" / "1.2 µs", "12.3 (10.1 - 14.0)".
std::string times(double x);
std::string nanos(double ns);
std::string fixed(double v, int digits);
std::string spread_text(const Spread& s, std::string (*format)(double));
std::string min_median_max(const Spread& s, std::string (*format)(double));

// A goal's row in the goals table: what, measured, met or not.
struct Goal {
  std::string what;
  std::string measured;
  std::optional<bool> met;  // nullopt: not measured in this run
};

// The sections; each appends its goals to goals.
void contention_section(std::ostream& out, const Raw& raw, std::vector<Goal>& goals);
void widget_section(std::ostream& out, const Raw& raw, std::vector<Goal>& goals);
void cache_section(std::ostream& out, const Raw& raw, std::vector<Goal>& goals);
void callgrind_section(std::ostream& out, const Raw& raw, std::vector<Goal>& goals);
void machine_section(std::ostream& out, const Raw& raw);

}  // namespace poolscope::bench_report
