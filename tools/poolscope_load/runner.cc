#include "runner.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "console.h"
#include "poolscope/pool/errors.h"

namespace poolscope::load {
namespace {

using Clock = std::chrono::steady_clock;

struct alignas(64) Worker {
  std::atomic<std::uint64_t> renders{0};
  std::uint64_t errors = 0;
  std::uint64_t timeouts = 0;
  std::uint64_t checksum = 0;
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

}  // namespace

RunResult run(const RunOptions& options) {
  const ConnectionUrl url = ConnectionUrl::parse(options.url);
  PoolConfig config;
  config.url = options.url;
  config.name = "load";
  config.pool_size = options.pool_size;
  config.max_overflow = options.max_overflow;
  config.checkout_timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(options.checkout_timeout);
  Pool pool(config);

  std::vector<Transaction> rows;
  {
    Lease sql = pool.acquire();
    seed(*sql, url.backend());
    rows = load_open_transactions(*sql);
  }
  const PoolStats before = pool.stats();

  std::vector<Worker> workers(static_cast<std::size_t>(options.threads));
  for (Worker& w : workers) {
    w.renderer = std::make_unique<WidgetRenderer>(options.mode, &pool, url);
  }
  std::atomic<bool> stop{false};
  std::mutex error_mu;
  std::string first_error;

  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (Worker& w : workers) {
    threads.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        try {
          w.checksum += w.renderer->render(rows);
          w.renders.fetch_add(1, std::memory_order_relaxed);
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

  const double total = options.duration.count();
  const bool bar = options.progress && Console::is_terminal();
  for (;;) {
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    if (elapsed >= total) break;
    if (bar) {
      std::uint64_t renders = 0;
      for (const Worker& w : workers) renders += w.renders.load(std::memory_order_relaxed);
      Console::instance().progress(progress_bar(elapsed, total, renders));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  stop = true;
  for (std::thread& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  if (bar) Console::instance().progress("");

  const PoolStats after = pool.stats();
  RunResult result;
  result.mode = std::string(to_string(options.mode));
  result.backend = std::string(to_string(url.backend()));
  result.url = url.redacted();
  result.threads = options.threads;
  result.pool_size = options.pool_size;
  result.max_overflow = options.max_overflow;
  result.duration_s = elapsed;
  LatencyHistogram latency;
  std::uint64_t naive_opened = 0;
  for (const Worker& w : workers) {
    result.renders += w.renders.load();
    result.errors += w.errors;
    result.timeouts += w.timeouts;
    latency.merge(w.renderer->acquire_latency());
    naive_opened += w.renderer->connections_opened();
  }
  if (options.mode == Mode::kNaive) {
    result.checkouts = naive_opened;
    result.connections_opened = naive_opened;
  } else {
    result.checkouts = after.acquires - before.acquires;
    result.reuses = after.reuses - before.reuses;
    result.connections_opened = after.connections_opened - before.connections_opened;
  }
  result.acquire_p50_s = latency.quantile_seconds(0.50);
  result.acquire_p99_s = latency.quantile_seconds(0.99);
  result.first_error = first_error;
  return result;
}

}  // namespace poolscope::load
