// Runs a poolscope-load scenario: worker threads render until the duration
// is up while the main thread draws the progress bar; the figures come from
// the pool's own statistics and the tracer's site table.

#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "poolscope/tracing/tracer.h"
#include "widget.h"

namespace poolscope::load {

enum class Scenario {
  kWidget,         // the dashboard widget, rendered as fast as the threads can
  kLeak,           // the widget, plus one export that holds its lease past leak_threshold
  kSettingsWrite,  // the widget, with settings saves mixed in and every read checked
  kOversubscribe,  // far more threads than connections: waits, timeouts, invariants
};

struct RunOptions {
  Scenario scenario = Scenario::kWidget;
  Mode mode = Mode::kPool;
  std::string url = "sqlite://poolscope-demo.db";
  int threads = 4;
  std::chrono::duration<double> duration{5.0};
  std::size_t pool_size = 10;
  std::size_t max_overflow = 20;
  std::chrono::duration<double> checkout_timeout{30.0};
  bool progress = true;
  // Leases held longer are reported. Default: 2 s in the leak scenario, else 30 s.
  std::optional<std::chrono::duration<double>> leak_threshold;
  // Acquires per second at one site that count as churn. Default (nullopt):
  // churn_per_render checkouts per render at the current render rate.
  std::optional<double> churn_threshold;
  double churn_per_render = 10;
  // Settings-write scenario: each worker saves a setting every this many renders.
  int write_every = 10;
  // host:port to serve /metrics and /stats.json on while running; empty: none.
  std::string metrics_listen;
  // Print the JSON stats snapshot (pools, sites, caches) at the end.
  bool print_stats = false;
};

// Ends a running run() early, as if its duration were up, and makes every
// later run() end at once: a stop is for the whole program. signal is the
// signal that asked for it (0: none); safe to call from a signal handler,
// it only sets flags.
void request_stop(int signal = 0) noexcept;

// Whether request_stop() was called, and the signal it was given (0: none).
bool stop_requested() noexcept;
int stop_signal() noexcept;

struct RunResult {
  std::string scenario;
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
  // Latency of the outermost checkouts (naive: connection opens); a nested
  // reuse in reuse mode costs nanoseconds and is not sampled. Cached mode
  // renders without checkouts, so it has (almost) no samples.
  std::uint64_t acquire_samples = 0;
  double acquire_p50_s = 0;
  double acquire_p99_s = 0;
  std::string first_error;
  // request_stop() ended the run before its duration was up.
  bool interrupted = false;

  // Tracing (every mode but naive, which bypasses the pool).
  bool traced = false;
  std::vector<tracing::SiteStats> sites;  // by checkouts, "other" last
  std::uint64_t folded_sites = 0;
  tracing::TracerStats tracer;
  double churn_threshold = 0;  // at the end of the run
  double leak_threshold_s = 0;

  // Caches (cached mode, settings-write scenario).
  std::vector<cache::CacheStats> caches;
  std::uint64_t sessions_avoided = 0;
  std::uint64_t writes = 0;       // settings saves
  std::uint64_t stale_reads = 0;  // reads older than the last committed save

  std::string stats_json;  // the collector's snapshot, when asked for

  // Waiting (every scenario; the point of oversubscribe).
  std::uint64_t waits = 0;  // checkouts that had to queue
  double wait_total_s = 0;
  std::size_t max_open_seen = 0;
  std::size_t max_pending_seen = 0;
  // The pool's invariants, checked while running and at the end in every
  // mode but naive (the scenario makes no difference; oversubscribe is where
  // they are under the most pressure).
  bool invariants_checked = false;
  std::vector<std::string> invariant_violations;

  double renders_per_s() const {
    return duration_s > 0 ? static_cast<double>(renders) / duration_s : 0;
  }
  double per_render(std::uint64_t n) const {
    return renders > 0 ? static_cast<double>(n) / static_cast<double>(renders) : 0;
  }
};

std::string_view to_string(Scenario scenario) noexcept;

// Seeds the database and runs the scenario. Throws poolscope::Error (BadUrl,
// ConnectError...) when the database cannot be set up, std::invalid_argument
// for options that do not fit together.
RunResult run(const RunOptions& options);

}  // namespace poolscope::load
