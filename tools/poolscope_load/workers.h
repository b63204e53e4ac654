// The threads of one run: the render workers (and, in the leak scenario, the
// slow export), each counting what it did, so a failed render is counted as
// an attempt, never dropped.
//
// A WorkerGroup starts its threads in its constructor and joins them in
// stop() (or its destructor). totals() may be called from any thread while
// they run; figures() once they are stopped.

#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "latency.h"
#include "poolscope/base/mutex.h"
#include "runner.h"
#include "widget.h"

namespace poolscope::load {

// What every worker of a run shares; all of it outlives the group.
struct WorkerContext {
  const RunOptions* options = nullptr;
  Pool* pool = nullptr;
  const ConnectionUrl* url = nullptr;
  const std::vector<Transaction>* rows = nullptr;
  WidgetCaches* caches = nullptr;  // cached mode, settings-write scenario
  WriteLedger* ledger = nullptr;   // settings-write scenario
  std::shared_ptr<spdlog::logger> logger;
  ChaosMonkey* chaos = nullptr;  // chaos scenario: told of every render that succeeds
  // Leak scenario: how long the slow export holds its lease.
  std::chrono::duration<double> leak_hold{0};
};

// What the workers did, summed once they have stopped.
struct WorkerFigures {
  std::uint64_t renders = 0;
  std::uint64_t failed_timeouts = 0;
  std::uint64_t failed_errors = 0;
  std::uint64_t writes = 0;
  std::uint64_t stale_reads = 0;
  std::uint64_t late_reads = 0;
  std::uint64_t naive_connections = 0;
  std::uint64_t database_reads = 0;
  LatencyHistogram render_latency;
  LatencyHistogram acquire_latency;
  std::string first_error;
};

// The class is thread-safe. No concurrent call to any API of this type
// causes a data race.
class WorkerGroup {
 public:
  explicit WorkerGroup(const WorkerContext& context);
  ~WorkerGroup();
  WorkerGroup(const WorkerGroup&) = delete;
  WorkerGroup& operator=(const WorkerGroup&) = delete;

  // Threads that may wait in acquire() at once (the slow export included).
  std::size_t acquirers() const noexcept { return threads_.size(); }

  // The counts so far; exact once stopped.
  RenderTotals totals() const noexcept;

  // Asks every thread to finish its render and joins them. Idempotent.
  void stop();

  // REQUIRES: stop() was called.
  WorkerFigures figures() const;

 private:
  // One render thread's counts. Its thread writes them; the atomics are read
  // by totals() while it runs, the rest only after it is joined.
  struct alignas(64) Worker {
    std::atomic<std::uint64_t> renders{0};
    std::atomic<std::uint64_t> failed_timeouts{0};
    std::atomic<std::uint64_t> failed_errors{0};
    std::atomic<double> latency_sum_ms{0};
    std::atomic<double> latency_sumsq_ms{0};
    std::uint64_t writes = 0;
    std::uint64_t stale_writes = 0;  // a writer that did not read its own write
    LatencyHistogram render_latency;
    std::unique_ptr<WidgetRenderer> renderer;
  };

  void render_loop(Worker& worker, std::size_t index);
  // One render attempt (and its write); throws what the render threw.
  void render_once(Worker& worker, std::uint64_t& next_account);
  void note_error(const char* what, bool timeout);

  const WorkerContext context_;
  std::vector<Worker> workers_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> export_failures_{0};  // the leak scenario's slow export
  mutable detail::Mutex error_mu_;
  std::string first_error_ POOLSCOPE_GUARDED_BY(error_mu_);
  std::string first_timeout_ POOLSCOPE_GUARDED_BY(error_mu_);
  std::vector<std::thread> threads_;
};

}  // namespace poolscope::load
