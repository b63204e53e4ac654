// How a run shows its progress on stderr: on a terminal, a bar redrawn in
// place that fits the terminal's width; elsewhere (a log file, CI), a line
// every interval in pgbench's -P form:
//
//   progress: 5.0 s, 329.2 renders/s, lat 12.123 ms stddev 3.456, 0 failed
//
// One ProgressDisplay per run, used from one thread.

#pragma once

#include <chrono>
#include <string>

#include "runner.h"

namespace poolscope::load {

// Columns of stderr's terminal (TIOCGWINSZ), else $COLUMNS, else 80.
int terminal_width();

// The bar line for elapsed of total seconds, at most width - 1 columns (the
// last column is left free so no terminal wraps).
std::string progress_bar(double elapsed_s, double total_s, const RenderTotals& totals, int width);

// pgbench's -P line for the interval that ended at elapsed_s and lasted
// interval_s, from the totals at its start and end.
std::string progress_line(double elapsed_s, double interval_s, const RenderTotals& start,
                          const RenderTotals& end);

// Not thread-safe: one per run, on the run's thread.
class ProgressDisplay {
 public:
  // enabled false: shows nothing. interval: between lines off a terminal
  // (zero: no lines). tag goes in front of each line ("p2").
  ProgressDisplay(bool enabled, std::chrono::duration<double> interval,
                  std::chrono::duration<double> total, std::string tag);
  ~ProgressDisplay();
  ProgressDisplay(const ProgressDisplay&) = delete;
  ProgressDisplay& operator=(const ProgressDisplay&) = delete;

  // Called about every 100 ms with the totals so far.
  void update(double elapsed_s, const RenderTotals& totals);
  // Removes the bar (idempotent).
  void finish();

 private:
  const bool bar_;
  const bool lines_;
  const double interval_s_;
  const double total_s_;
  const std::string tag_;
  double next_line_s_;
  double line_start_s_ = 0;
  RenderTotals line_start_;
  bool shown_ = false;
};

}  // namespace poolscope::load
