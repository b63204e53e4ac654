#include "runner.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <deque>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "console.h"
#include "log_sink.h"
#include "poolscope/exporters/metrics_collector.h"
#include "poolscope/exporters/metrics_server.h"
#include "poolscope/pool/errors.h"

namespace poolscope::load {
namespace {

using Clock = std::chrono::steady_clock;
using Seconds = std::chrono::duration<double>;

struct alignas(64) Worker {
  std::atomic<std::uint64_t> renders{0};
  std::uint64_t errors = 0;
  std::uint64_t timeouts = 0;
  std::uint64_t writes = 0;
  std::uint64_t stale_writes = 0;  // a writer that did not read its own write
  std::unique_ptr<WidgetRenderer> renderer;
};

std::string progress_bar(double elapsed, double total, std::uint64_t renders) {
  constexpr int kWidth = 30;
  const double fraction = total > 0 ? std::min(1.0, elapsed / total) : 1.0;
  const int filled = static_cast<int>(fraction * kWidth);
  std::string bar(kWidth + 2, '.');
  bar.front() = '[';
  bar.back() = ']';
  std::fill_n(bar.begin() + 1, filled, '#');
  char text[160];
  std::snprintf(text, sizeof text, " %5.1f/%.1f s  %llu renders  %.0f/s", elapsed, total,
                static_cast<unsigned long long>(renders),
                elapsed > 0 ? static_cast<double>(renders) / elapsed : 0.0);
  return bar + text;
}

// The render rate over the last second, from samples taken each tick.
class RenderRate {
 public:
  void sample(Clock::time_point now, std::uint64_t renders) {
    samples_.push_back({now, renders});
    while (samples_.size() > 1 && samples_[1].first <= now - std::chrono::seconds(1)) {
      samples_.pop_front();
    }
  }
  // Renders per second, once half a second has been seen; 0 before.
  double per_second() const {
    const double span = Seconds(samples_.back().first - samples_.front().first).count();
    if (span < 0.5) return 0;
    return static_cast<double>(samples_.back().second - samples_.front().second) / span;
  }

 private:
  std::deque<std::pair<Clock::time_point, std::uint64_t>> samples_;
};

// Set by request_stop(), possibly from a signal handler: lock-free atomics,
// relaxed because nothing else is published through them.
std::atomic<bool> g_stop_requested{false};
std::atomic<int> g_stop_signal{0};
static_assert(std::atomic<bool>::is_always_lock_free && std::atomic<int>::is_always_lock_free);

// Names show in leak reports and in top(1).
void name_thread(const std::string& name) {
  ::pthread_setname_np(::pthread_self(), name.substr(0, 15).c_str());
}

}  // namespace

void request_stop(int signal) noexcept {
  if (signal != 0) g_stop_signal.store(signal, std::memory_order_relaxed);
  g_stop_requested.store(true, std::memory_order_relaxed);
}

bool stop_requested() noexcept { return g_stop_requested.load(std::memory_order_relaxed); }

int stop_signal() noexcept { return g_stop_signal.load(std::memory_order_relaxed); }

std::string_view to_string(Scenario scenario) noexcept {
  switch (scenario) {
    case Scenario::kLeak:
      return "leak";
    case Scenario::kSettingsWrite:
      return "settings-write";
    case Scenario::kOversubscribe:
      return "oversubscribe";
    case Scenario::kWidget:
      break;
  }
  return "widget";
}

RunResult run(const RunOptions& options) {
  if (options.scenario == Scenario::kLeak && options.mode == Mode::kNaive) {
    throw std::invalid_argument("the leak scenario needs a pool: use --mode pool or --mode reuse");
  }
  const ConnectionUrl url = ConnectionUrl::parse(options.url);
  PoolConfig config;
  config.url = options.url;
  config.name = "load";
  config.pool_size = options.pool_size;
  config.max_overflow = options.max_overflow;
  config.checkout_timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(options.checkout_timeout);
  Pool pool(config);

  const Seconds leak_threshold = options.leak_threshold.value_or(
      options.scenario == Scenario::kLeak ? Seconds(2.0) : Seconds(30.0));
  std::optional<tracing::Tracer> tracer;
  if (options.mode != Mode::kNaive) {
    tracing::TracerConfig tc;
    tc.logger = console_logger();
    tc.leak_threshold = std::chrono::duration_cast<std::chrono::milliseconds>(leak_threshold);
    tc.churn_window = std::chrono::seconds(1);
    tc.churn_threshold = options.churn_threshold.value_or(0);  // auto: set once renders are seen
    tracer.emplace(pool, tc);
  }

  std::vector<Transaction> rows;
  {
    // Setup opens the first connection: give it longer than a tiny
    // --checkout-timeout, which is for the run, not for connecting.
    std::optional<Lease> sql = pool.try_acquire(
        std::max<std::chrono::milliseconds>(config.checkout_timeout, std::chrono::seconds(30)));
    if (!sql) throw std::runtime_error("no connection for the setup within 30 s");
    seed(**sql, url.backend());
    rows = load_open_transactions(**sql);
  }
  const PoolStats before = pool.stats();

  const bool writing = options.scenario == Scenario::kSettingsWrite;
  if (writing && options.write_every < 1) {
    throw std::invalid_argument("--write-every must be at least 1");
  }
  std::unique_ptr<WidgetCaches> caches;
  if (options.mode == Mode::kCached || writing) caches = std::make_unique<WidgetCaches>(pool);
  std::unique_ptr<WriteLedger> ledger;
  if (writing) ledger = std::make_unique<WriteLedger>();

  // The leak scenario holds one lease for 1.5 leak thresholds: long enough to
  // be reported, short enough to come back (and be logged) within the run.
  const Seconds leak_hold = leak_threshold * 1.5;
  Seconds duration = options.duration;
  if (options.scenario == Scenario::kLeak && duration < leak_hold + Seconds(0.5)) {
    duration = leak_hold + Seconds(0.5);
    Console::instance().line("poolscope-load: running " +
                             std::to_string(duration.count()).substr(0, 4) +
                             " s so the held lease passes leak_threshold and comes back");
  }

  // Metrics while running: the pool, its call sites and the caches.
  std::shared_ptr<exporters::MetricsCollector> metrics;
  std::unique_ptr<exporters::MetricsServer> server;
  if (!options.metrics_listen.empty() || options.print_stats) {
    metrics = std::make_shared<exporters::MetricsCollector>();
    metrics->add_pool(pool);
    if (tracer) metrics->add_tracer(*tracer);
    if (caches) {
      metrics->add_cache(caches->settings);
      metrics->add_cache(caches->accounts, pool.name());
    }
  }
  if (!options.metrics_listen.empty()) {
    server = std::make_unique<exporters::MetricsServer>(
        metrics, exporters::MetricsServerConfig{.listen = options.metrics_listen});
    Console::instance().line("poolscope-load: serving " + server->url() + "/metrics and " +
                             server->url() + "/stats.json");
  }

  std::vector<Worker> workers(static_cast<std::size_t>(options.threads));
  for (Worker& w : workers) {
    w.renderer =
        std::make_unique<WidgetRenderer>(options.mode, &pool, url, caches.get(), ledger.get());
  }
  std::atomic<bool> stop{false};
  std::mutex error_mu;
  std::string first_error;

  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (Worker& w : workers) {
    threads.emplace_back([&, n = threads.size()] {
      name_thread("render-" + std::to_string(n + 1));
      std::uint64_t next_account = n;
      while (!stop.load(std::memory_order_relaxed)) {
        try {
          w.renderer->render(rows);
          const std::uint64_t done = w.renders.fetch_add(1, std::memory_order_relaxed) + 1;
          if (writing && done % static_cast<std::uint64_t>(options.write_every) == 0) {
            const int account = static_cast<int>(next_account++ % kAccounts) + 1;
            if (!ledger->write(*caches, account)) ++w.stale_writes;
            ++w.writes;
          }
        } catch (const PoolTimeout&) {
          ++w.timeouts;
        } catch (const std::exception& e) {
          ++w.errors;
          std::lock_guard lock(error_mu);
          if (first_error.empty()) first_error = e.what();
        }
      }
    });
  }
  if (options.scenario == Scenario::kLeak) {
    threads.emplace_back([&] {
      name_thread("slow-export");
      try {
        slow_export(pool, leak_hold, stop);
      } catch (const std::exception& e) {
        std::lock_guard lock(error_mu);
        if (first_error.empty()) first_error = e.what();
      }
    });
  }

  // The pool's invariants, sampled while the workers run (naive mode
  // bypasses the pool). Every thread started above may wait in acquire() at
  // once, the slow export included, and no other thread acquires.
  const bool check_invariants = options.mode != Mode::kNaive;
  const std::size_t acquirers = threads.size();
  std::mutex violations_mu;
  std::vector<std::string> violations;
  std::atomic<std::size_t> max_open{0}, max_pending{0};
  auto violation = [&](std::string text) {
    std::lock_guard lock(violations_mu);
    if (violations.size() < 20) violations.push_back(std::move(text));
  };
  std::thread sampler([&] {
    while (check_invariants && !stop.load(std::memory_order_relaxed)) {
      const PoolStats s = pool.stats();
      max_open = std::max<std::size_t>(max_open, s.open);
      max_pending = std::max<std::size_t>(max_pending, s.pending);
      if (s.open > s.max_connections) {
        violation("open " + std::to_string(s.open) + " > max " + std::to_string(s.max_connections));
      }
      if (s.active > s.max_connections) {
        violation("active " + std::to_string(s.active) + " > max " +
                  std::to_string(s.max_connections));
      }
      if (s.pending > acquirers) {
        violation("pending " + std::to_string(s.pending) + " > " + std::to_string(acquirers) +
                  " threads that acquire");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });

  const double total = duration.count();
  const bool bar = options.progress && Console::is_terminal();
  RenderRate rate;
  bool interrupted = false;
  for (;;) {
    const auto now = Clock::now();
    const double elapsed = Seconds(now - start).count();
    if (stop_requested()) {
      interrupted = true;
      break;
    }
    if (elapsed >= total) break;
    std::uint64_t renders = 0;
    for (const Worker& w : workers) renders += w.renders.load(std::memory_order_relaxed);
    rate.sample(now, renders);
    if (tracer && !options.churn_threshold && rate.per_second() > 0) {
      tracer->set_churn_threshold(options.churn_per_render * rate.per_second());
    }
    if (bar) Console::instance().progress(progress_bar(elapsed, total, renders));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  stop = true;
  for (std::thread& t : threads) t.join();
  sampler.join();
  const double elapsed = Seconds(Clock::now() - start).count();
  if (bar) Console::instance().progress("");

  const PoolStats after = pool.stats();
  RunResult result;
  result.scenario = std::string(to_string(options.scenario));
  result.mode = std::string(to_string(options.mode));
  result.backend = std::string(to_string(url.backend()));
  result.url = url.redacted();
  result.threads = options.threads;
  result.pool_size = options.pool_size;
  result.max_overflow = options.max_overflow;
  result.duration_s = elapsed;
  result.interrupted = interrupted;
  LatencyHistogram latency;
  std::uint64_t naive_opened = 0;
  for (const Worker& w : workers) {
    result.renders += w.renders.load();
    result.errors += w.errors;
    result.timeouts += w.timeouts;
    latency.merge(w.renderer->acquire_latency());
    naive_opened += w.renderer->connections_opened();
    result.writes += w.writes;
    result.stale_reads += w.stale_writes + w.renderer->stale_reads();
  }
  if (caches) {
    for (const cache::CacheStats& c : {caches->accounts.stats(), caches->settings.stats()}) {
      result.caches.push_back(c);
      result.sessions_avoided += c.sessions_avoided;
    }
  }
  if (options.mode == Mode::kNaive) {
    result.checkouts = naive_opened;
    result.connections_opened = naive_opened;
  } else {
    result.checkouts = after.acquires - before.acquires;
    result.reuses = after.reuses - before.reuses;
    result.connections_opened = after.connections_opened - before.connections_opened;
  }
  result.waits = after.waits - before.waits;
  result.wait_total_s = std::chrono::duration<double>(after.total_wait - before.total_wait).count();
  result.max_open_seen = max_open.load();
  result.max_pending_seen = max_pending.load();
  result.invariants_checked = check_invariants;
  if (result.invariants_checked) {
    // Nothing lost: with every worker stopped, every lease is back.
    if (after.active != 0) violation("active " + std::to_string(after.active) + " after the run");
    if (after.pending != 0)
      violation("pending " + std::to_string(after.pending) + " after the run");
    if (after.open != after.idle) {
      violation("open " + std::to_string(after.open) + " != idle " + std::to_string(after.idle) +
                " after the run");
    }
    if (after.connections_opened - after.closed_total() != after.open) {
      violation(
          "opened - closed = " + std::to_string(after.connections_opened - after.closed_total()) +
          " but open = " + std::to_string(after.open));
    }
  }
  result.invariant_violations = violations;
  result.acquire_samples = latency.count();
  result.acquire_p50_s = latency.quantile_seconds(0.50);
  result.acquire_p99_s = latency.quantile_seconds(0.99);
  result.first_error = first_error;
  if (options.print_stats) result.stats_json = metrics->json();
  if (tracer) {
    result.traced = true;
    result.sites = tracer->sites();
    result.folded_sites = tracer->folded_sites();
    result.tracer = tracer->stats();
    result.churn_threshold = tracer->churn_threshold();
    result.leak_threshold_s = leak_threshold.count();
  }
  return result;
}

}  // namespace poolscope::load
