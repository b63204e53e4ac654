// Runs a poolscope-load scenario: worker threads render until the duration
// is up while the main thread draws the progress bar; the figures come from
// the pool's own statistics.

#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "widget.h"

namespace poolscope::load {

struct RunOptions {
  Mode mode = Mode::kPool;
  std::string url = "sqlite://poolscope-demo.db";
  int threads = 4;
  std::chrono::duration<double> duration{5.0};
  std::size_t pool_size = 10;
  std::size_t max_overflow = 20;
  std::chrono::duration<double> checkout_timeout{30.0};
  bool progress = true;
};

struct RunResult {
  std::string scenario = "widget";
  std::string mode;
  std::string backend;
  std::string url;  // redacted
  int threads = 0;
  std::size_t pool_size = 0;
  std::size_t max_overflow = 0;
  double duration_s = 0;
  std::uint64_t renders = 0;
  std::uint64_t checkouts = 0;           // pool checkouts (naive: connections opened)
  std::uint64_t reuses = 0;              // nested acquires served by the render's lease
  std::uint64_t connections_opened = 0;  // physical connections
  std::uint64_t timeouts = 0;
  std::uint64_t errors = 0;
  double acquire_p50_s = 0;
  double acquire_p99_s = 0;
  std::string first_error;

  double renders_per_s() const { return duration_s > 0 ? static_cast<double>(renders) / duration_s : 0; }
  double per_render(std::uint64_t n) const {
    return renders > 0 ? static_cast<double>(n) / static_cast<double>(renders) : 0;
  }
};

// Seeds the database and runs the widget scenario. Throws poolscope::Error
// (BadUrl, ConnectError...) when the database cannot be set up.
RunResult run(const RunOptions& options);

}  // namespace poolscope::load
