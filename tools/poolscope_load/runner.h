// Runs one poolscope-load scenario in this process: worker threads render
// until the duration is up while the calling thread shows the progress; the
// figures come from the pool's own statistics, the tracer's site table and
// the workers' counts. The database must have been seeded (prepare_database).
//
// run() is meant for one thread at a time; request_stop() may be called from
// any thread or a signal handler.

#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "chaos.h"
#include "commit_log.h"
#include "latency.h"
#include "poolscope/tracing/tracer.h"
#include "redis_setup.h"
#include "widget.h"

namespace poolscope::load {

enum class Scenario {
  kWidget,         // the dashboard widget, rendered as fast as the threads can
  kLeak,           // the widget, plus one export that holds its lease past leak_threshold
  kSettingsWrite,  // the widget, with settings saves mixed in and every read checked
  kOversubscribe,  // far more threads than connections: waits, timeouts, invariants
  kChaos,          // the widget while backends are killed and the server restarts
};

// The render counts a progress display reads while the workers run.
struct RenderTotals {
  std::uint64_t renders = 0;  // succeeded
  std::uint64_t failed = 0;   // attempts that threw
  double latency_sum_ms = 0;  // of the renders that succeeded
  double latency_sumsq_ms = 0;
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
  // PoolConfig::transaction_pooler: a transaction-pooling PgBouncer in front.
  bool transaction_pooler = false;
  // PoolConfig::statement_cache_size: statements kept prepared per
  // connection for the pooled modes' reads (zero: a one-time query each).
  std::size_t statement_cache_size = 128;
  // Show progress on stderr: a bar on a terminal, else a line every
  // progress_interval (pgbench's -P; zero: no lines).
  bool progress = true;
  std::chrono::duration<double> progress_interval{5.0};
  // Leases held longer are reported. Default: 2 s in the leak scenario, else 30 s.
  std::optional<std::chrono::duration<double>> leak_threshold;
  // Acquires per second at one site that count as churn as well (the
  // tracer's rate option). Unset: off; churn is found by its shape only.
  std::optional<double> churn_threshold;
  // Settings-write scenario: each worker saves a setting every this many renders.
  int write_every = 10;
  // Settings-write scenario: how long after another process's save a read
  // may still return the previous value (a read of this process's own save
  // may not at all).
  std::chrono::duration<double> stale_window{1.0};
  // --redis: the Redis tier under the caches (cached mode, settings-write),
  // its keys under redis_prefix. Empty: none.
  std::string redis_url;
  std::string redis_prefix;
  // --processes: this process's index (0-based) of `processes`, and the
  // saves of all of them (null: a log of this run's own).
  int process_index = 0;
  int processes = 1;
  CommitLog* commit_log = nullptr;
  // Chaos scenario: terminate the database's backends every chaos_kill_every
  // (zero: never) and run chaos_restart_command every chaos_restart_every
  // (empty command: never).
  std::chrono::duration<double> chaos_kill_every{0.5};
  std::chrono::duration<double> chaos_restart_every{2.0};
  std::string chaos_restart_command;
  // host:port to serve /metrics and /stats.json on while running; empty: none.
  std::string metrics_listen;
  // Print the JSON stats snapshot (pools, sites, caches) at the end.
  bool print_stats = false;
  // Put in front of every log line ("p2" for the second of --processes).
  std::string log_tag;
  // Called about every 100 ms with the totals so far, on run()'s thread
  // (--processes publishes them to the parent this way).
  std::function<void(const RenderTotals&)> on_tick;
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
  bool transaction_pooler = false;
  std::size_t statement_cache_size = 0;
  std::uint64_t statements_prepared = 0;   // PoolStats::statements_prepared during the run
  std::uint64_t statement_cache_hits = 0;  // executions of a statement prepared before
  double duration_s = 0;
  std::uint64_t renders = 0;             // render attempts that succeeded
  std::uint64_t failed_timeouts = 0;     // attempts that failed with PoolTimeout
  std::uint64_t failed_errors = 0;       // attempts that failed otherwise
  std::uint64_t checkouts = 0;           // pool checkouts (naive: connections opened)
  std::uint64_t reuses = 0;              // nested acquires served by the render's lease
  std::uint64_t connections_opened = 0;  // physical connections
  std::uint64_t timeouts = 0;            // checkouts that timed out (the pool's count)
  // Latency of the outermost checkouts (naive: connection opens); a nested
  // reuse in reuse mode costs nanoseconds and is not sampled. Cached mode
  // renders without checkouts, so it has (almost) no samples.
  std::uint64_t acquire_samples = 0;
  double acquire_p50_s = 0;
  double acquire_p99_s = 0;
  // Latency of the renders that succeeded (a render attempt: a write too,
  // in the settings-write scenario).
  LatencyHistogram render_latency;
  std::string first_error;  // of the first failed attempt
  // request_stop() ended the run before its duration was up.
  bool interrupted = false;

  // Reads that reached the database: settings queries (every mode but
  // cached), or the settings cache's loads (cached mode: one query per
  // account), and how many distinct keys they were for.
  std::uint64_t database_loads = 0;
  std::uint64_t distinct_keys = 0;
  std::uint64_t redis_hits = 0;       // the Redis tier's hits (none without it)
  std::optional<RedisFigures> redis;  // --redis

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
  std::uint64_t stale_reads = 0;  // reads older than the save they had to see
  std::uint64_t late_reads = 0;   // another process's old value, within stale_window
  double stale_window_s = 0;
  // How long after a save (of any process) began this process first read
  // it; and, when this run is all processes, the window of every save
  // until the last process had read it (the saves none had yet: unseen).
  LatencyHistogram sightings;
  std::vector<double> staleness_ms;  // sorted
  std::uint64_t staleness_unseen = 0;

  std::string stats_json;  // the collector's snapshot, when asked for

  // Waiting (every scenario; the point of oversubscribe).
  std::uint64_t waits = 0;  // acquires that had to queue (including those that timed out)
  double wait_total_s = 0;
  std::size_t max_open_seen = 0;
  std::size_t max_pending_seen = 0;
  // The pool's invariants, checked while running and at the end in every
  // mode but naive (the scenario makes no difference; oversubscribe is where
  // they are under the most pressure).
  bool invariants_checked = false;
  std::vector<std::string> invariant_violations;

  // Chaos scenario: the faults, how the widget came back from them, and how
  // long the run waited after its duration for the last recovery.
  std::optional<ChaosFigures> chaos;
  double chaos_recovery_wait_s = 0;

  std::uint64_t failed() const { return failed_timeouts + failed_errors; }
  std::uint64_t attempts() const { return renders + failed(); }
  double renders_per_s() const {
    return duration_s > 0 ? static_cast<double>(renders) / duration_s : 0;
  }
  // n per render attempt: failed attempts did (some of) the work too.
  double per_render(std::uint64_t n) const {
    return attempts() > 0 ? static_cast<double>(n) / static_cast<double>(attempts()) : 0;
  }
  // Acquires that either got a connection or timed out: what waits are a share of.
  std::uint64_t acquire_attempts() const { return checkouts + timeouts; }
};

std::string_view to_string(Scenario scenario) noexcept;

// Runs the scenario. Throws poolscope::Error (BadUrl, ConnectError...) when
// its pool cannot reach the database, std::invalid_argument for options that
// do not fit together.
RunResult run(const RunOptions& options);

}  // namespace poolscope::load
