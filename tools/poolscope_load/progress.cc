#include "progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "console.h"

namespace poolscope::load {

int terminal_width() {
  winsize size{};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  if (const char* columns = std::getenv("COLUMNS")) {
    const int n = std::atoi(columns);
    if (n > 0) return n;
  }
  return 80;
}

std::string progress_bar(double elapsed_s, double total_s, const RenderTotals& totals, int width) {
  char text[160];
  std::snprintf(text, sizeof text, " %.1f/%.1f s  %llu renders  %.0f/s  %llu failed", elapsed_s,
                total_s, static_cast<unsigned long long>(totals.renders),
                elapsed_s > 0 ? static_cast<double>(totals.renders) / elapsed_s : 0.0,
                static_cast<unsigned long long>(totals.failed));
  const std::string figures = text;
  const int room = std::max(0, width - 1);
  // The bar takes what the figures leave, up to 30 columns; below 10 it
  // says nothing worth its space.
  const int bar_width = std::min(30, room - static_cast<int>(figures.size()) - 2);
  std::string line;
  if (bar_width >= 10) {
    const double fraction = total_s > 0 ? std::min(1.0, elapsed_s / total_s) : 1.0;
    const int filled = static_cast<int>(fraction * bar_width);
    line = "[" + std::string(static_cast<std::size_t>(filled), '#') +
           std::string(static_cast<std::size_t>(bar_width - filled), '.') + "]";
  }
  line += figures;
  if (static_cast<int>(line.size()) > room) line.resize(static_cast<std::size_t>(room));
  return line;
}

std::string progress_line(double elapsed_s, double interval_s, const RenderTotals& start,
                          const RenderTotals& end) {
  const double renders = static_cast<double>(end.renders - start.renders);
  const double mean = renders > 0 ? (end.latency_sum_ms - start.latency_sum_ms) / renders : 0;
  const double square = renders > 0 ? (end.latency_sumsq_ms - start.latency_sumsq_ms) / renders : 0;
  const double stddev = std::sqrt(std::max(0.0, square - mean * mean));
  char text[200];
  std::snprintf(text, sizeof text,
                "progress: %.1f s, %.1f renders/s, lat %.3f ms stddev %.3f, %llu failed", elapsed_s,
                interval_s > 0 ? renders / interval_s : 0.0, mean, stddev,
                static_cast<unsigned long long>(end.failed - start.failed));
  return text;
}

ProgressDisplay::ProgressDisplay(bool enabled, std::chrono::duration<double> interval,
                                 std::chrono::duration<double> total, std::string tag)
    : bar_(enabled && Console::is_terminal()),
      lines_(enabled && !bar_ && interval.count() > 0),
      interval_s_(interval.count()),
      total_s_(total.count()),
      tag_(std::move(tag)),
      next_line_s_(interval.count()) {}

ProgressDisplay::~ProgressDisplay() { finish(); }

void ProgressDisplay::update(double elapsed_s, const RenderTotals& totals) {
  if (bar_) {
    std::string line = progress_bar(elapsed_s, total_s_, totals, terminal_width());
    if (!tag_.empty()) line = tag_ + " " + line;
    Console::instance().progress(line);
    shown_ = true;
  }
  // A line per interval, as pgbench prints them; a run cut short ends
  // without a line for its partial interval. The rates are over the time
  // since the last line, however late this update comes.
  if (lines_ && elapsed_s >= next_line_s_) {
    const std::string line =
        progress_line(elapsed_s, elapsed_s - line_start_s_, line_start_, totals);
    Console::instance().line(tag_.empty() ? line : tag_ + " " + line);
    line_start_ = totals;
    line_start_s_ = elapsed_s;
    while (next_line_s_ <= elapsed_s) next_line_s_ += interval_s_;
  }
}

void ProgressDisplay::finish() {
  if (shown_) Console::instance().progress("");
  shown_ = false;
}

}  // namespace poolscope::load
