#include "workers.h"

#include <pthread.h>

#include "poolscope/pool/errors.h"

namespace poolscope::load {
namespace {

using Clock = std::chrono::steady_clock;

// Names show in leak reports and in top(1).
void name_thread(const std::string& name) {
  ::pthread_setname_np(::pthread_self(), name.substr(0, 15).c_str());
}

// Only the owning thread writes, so a relaxed load and store add without a
// read-modify-write; readers on other threads see some recent sum.
void add(std::atomic<double>& sum, double value) {
  sum.store(sum.load(std::memory_order_relaxed) + value, std::memory_order_relaxed);
}

}  // namespace

WorkerGroup::WorkerGroup(const WorkerContext& context)
    : context_(context), workers_(static_cast<std::size_t>(context.options->threads)) {
  for (Worker& w : workers_) {
    w.renderer =
        std::make_unique<WidgetRenderer>(context_.options->mode, context_.pool, *context_.url,
                                         context_.caches, context_.ledger, context_.logger);
  }
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    threads_.emplace_back([this, i] { render_loop(workers_[i], i); });
  }
  if (context_.options->scenario == Scenario::kLeak) {
    threads_.emplace_back([this] {
      name_thread("slow-export");
      try {
        slow_export(*context_.pool, context_.leak_hold, stop_);
      } catch (const std::exception& e) {
        export_failures_.fetch_add(1, std::memory_order_relaxed);
        note_error(e.what(), /*timeout=*/false);
      }
    });
  }
}

WorkerGroup::~WorkerGroup() { stop(); }

void WorkerGroup::stop() {
  stop_.store(true, std::memory_order_relaxed);
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void WorkerGroup::note_error(const char* what, bool timeout) {
  detail::MutexLock lock(error_mu_);
  std::string& first = timeout ? first_timeout_ : first_error_;
  if (first.empty()) first = what;
}

void WorkerGroup::render_once(Worker& w, std::uint64_t& next_account) {
  const RunOptions& options = *context_.options;
  const auto start = Clock::now();
  w.renderer->render(*context_.rows);
  if (context_.ledger != nullptr) {
    const std::uint64_t done = w.renders.load(std::memory_order_relaxed) + 1;
    const std::vector<int>& mine = context_.ledger->accounts();
    if (!mine.empty() && done % static_cast<std::uint64_t>(options.write_every) == 0) {
      const int account = mine[next_account++ % mine.size()];
      if (!context_.ledger->write(*context_.caches, account)) ++w.stale_writes;
      ++w.writes;
    }
  }
  const auto end = Clock::now();
  if (context_.chaos != nullptr) context_.chaos->render_succeeded(start, end);
  const auto took = end - start;
  w.render_latency.record(took);
  const double ms = std::chrono::duration<double, std::milli>(took).count();
  add(w.latency_sum_ms, ms);
  add(w.latency_sumsq_ms, ms * ms);
  w.renders.fetch_add(1, std::memory_order_relaxed);
}

void WorkerGroup::render_loop(Worker& w, std::size_t index) {
  name_thread("render-" + std::to_string(index + 1));
  std::uint64_t next_account = index;
  while (!stop_.load(std::memory_order_relaxed)) {
    try {
      render_once(w, next_account);
    } catch (const PoolTimeout& e) {
      w.failed_timeouts.fetch_add(1, std::memory_order_relaxed);
      note_error(e.what(), /*timeout=*/true);
    } catch (const std::exception& e) {
      w.failed_errors.fetch_add(1, std::memory_order_relaxed);
      note_error(e.what(), /*timeout=*/false);
    }
  }
}

RenderTotals WorkerGroup::totals() const noexcept {
  RenderTotals t;
  for (const Worker& w : workers_) {
    t.renders += w.renders.load(std::memory_order_relaxed);
    t.failed += w.failed_timeouts.load(std::memory_order_relaxed) +
                w.failed_errors.load(std::memory_order_relaxed);
    t.latency_sum_ms += w.latency_sum_ms.load(std::memory_order_relaxed);
    t.latency_sumsq_ms += w.latency_sumsq_ms.load(std::memory_order_relaxed);
  }
  return t;
}

WorkerFigures WorkerGroup::figures() const {
  WorkerFigures f;
  for (const Worker& w : workers_) {
    f.renders += w.renders.load(std::memory_order_relaxed);
    f.failed_timeouts += w.failed_timeouts.load(std::memory_order_relaxed);
    f.failed_errors += w.failed_errors.load(std::memory_order_relaxed);
    f.writes += w.writes;
    f.stale_reads += w.stale_writes + w.renderer->stale_reads();
    f.late_reads += w.renderer->late_reads();
    f.naive_connections += w.renderer->connections_opened();
    f.database_reads += w.renderer->database_reads();
    f.render_latency.merge(w.render_latency);
    f.acquire_latency.merge(w.renderer->acquire_latency());
  }
  // The export is no render, but its failure must not pass unseen.
  f.failed_errors += export_failures_.load(std::memory_order_relaxed);
  detail::MutexLock lock(error_mu_);
  // A timeout's text says little that the counts do not; another error's does.
  f.first_error = first_error_.empty() ? first_timeout_ : first_error_;
  return f;
}

}  // namespace poolscope::load
