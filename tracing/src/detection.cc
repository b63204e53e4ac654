#include "detection.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>
#include <string>

#include "poolscope/base/error.h"
#include "poolscope/base/log_text.h"

namespace poolscope::tracing::detail {
namespace {

constexpr const char* kFix =
    "Hold one lease around the loop (nested acquire() calls share it), or cache what the loop "
    "reads.";

}  // namespace

std::chrono::milliseconds Detection::period(const TracerConfig& config) {
  // churn_window counts whatever the threshold is now: the rate option may be
  // turned on later (set_churn_threshold).
  auto p = std::min(std::chrono::milliseconds(1000), config.churn_window / 10);
  p = std::min(p, config.timeout_log_interval / 4);
  if (config.leak_threshold.count() > 0) p = std::min(p, config.leak_threshold / 4);
  if (config.stats_log_interval.count() > 0) p = std::min(p, config.stats_log_interval / 4);
  return std::max(p, std::chrono::milliseconds(10));
}

void Detection::round() noexcept {
  try {
    const Clock::time_point now = Clock::now();
    const std::vector<TracerState::Attached> pools = state_.pools();
    // Forget pools that went away.
    std::erase_if(pools_, [&](const auto& entry) {
      return std::none_of(pools.begin(), pools.end(), [&](const TracerState::Attached& a) {
        return a.tracer->registry().id() == entry.first;
      });
    });
    for (const TracerState::Attached& pool : pools) {
      const auto [it, fresh] = pools_.try_emplace(pool.tracer->registry().id());
      if (fresh) it->second.stats_logged = now;
      round(pool, it->second, now);
    }
  } catch (...) {
    // Never let a failure end detection (or the process: this is a thread).
    try {
      state_.logger().error("poolscope tracer: detection round failed: {}",
                            log_text(exception_text(std::current_exception())));
    } catch (...) {
    }
  }
}

void Detection::round(const TracerState::Attached& pool, PoolState& ps, Clock::time_point now) {
  const TracerConfig& config = state_.config();
  if (std::optional<std::vector<LeaseInfo>> leases = pool.view.active_leases()) {
    pool.tracer->scan_leases(*leases, config.leak_threshold);
  }
  pool.tracer->flush_timeouts(now, /*final=*/false);
  if (config.stats_log_interval.count() > 0 && now - ps.stats_logged >= config.stats_log_interval) {
    ps.stats_logged = now;
    if (state_.logger().should_log(spdlog::level::debug)) {
      if (std::optional<PoolStats> stats = pool.view.stats()) pool.tracer->log_stats(*stats);
    }
  }
  shapes(*pool.tracer, ps, now);
  rates(*pool.tracer, ps, now);
}

void Detection::shapes(PoolTracer& pool, PoolState& ps, Clock::time_point now) {
  if (state_.config().churn_loop == 0) return;
  SiteRegistry& registry = pool.registry();
  const std::vector<LoopCounts> counts = registry.loop_counts();  // named sites, then "other"
  const std::size_t named = counts.size() - 1;
  if (ps.shapes.size() < counts.size()) {
    // A site first seen goes before "other", which stays last.
    const Shape other = ps.shapes.empty() ? Shape{} : ps.shapes.back();
    if (!ps.shapes.empty()) ps.shapes.pop_back();
    ps.shapes.resize(named);
    ps.shapes.push_back(other);
  }
  for (std::size_t i = 0; i <= named; ++i) {
    Shape& s = ps.shapes[i];
    const LoopCounts& c = counts[i];
    const auto index = static_cast<std::uint32_t>(i < named ? i : registry.max_sites());
    const bool active = c.loops != s.loops || c.latest_sum != s.latest_sum;
    s.loops = c.loops;
    s.latest_sum = c.latest_sum;
    if (active) {
      s.active = now;
      std::optional<SiteRegistry::Loop> loop = registry.take_loop(index);
      if (!s.reported && !s.pending) {
        s.pending = true;
        s.loop = std::move(loop);
        continue;
      }
    }
    if (s.pending) {
      s.pending = false;
      s.reported = true;
      report_shape(pool, index, c, s.loop);
      s.loop.reset();
    } else if (!active && s.reported && now - s.active >= state_.config().churn_quiet) {
      s.reported = false;
    }
  }
}

void Detection::report_shape(PoolTracer& pool, std::uint32_t index, const LoopCounts& counts,
                             const std::optional<SiteRegistry::Loop>& loop) {
  const TracerConfig& config = state_.config();
  const std::string name = pool.registry().name(index);
  std::string where = "[Called from: " + name + "]";
  std::string thread;
  if (loop) {
    if (!loop->stack.empty()) where = pool.called_from(loop->site, loop->stack);
    thread = " on thread " + std::to_string(loop->thread);
  }
  state_.logger().warn(
      "Session churn at {}{} (pool={}): a loop took {} leases here in a row{}, each within {} and "
      "1/8 of its hold time after the last came back (the longest of {} such loops so far; "
      "churn_loop {}) {}. A lease per loop iteration? {}",
      name, name == "other" ? " (sites past max_sites)" : "", log_text(pool.pool_name()),
      counts.longest, thread,
      duration_text(std::chrono::duration_cast<std::chrono::nanoseconds>(config.churn_gap)),
      counts.loops, config.churn_loop, where, kFix);
  state_.churn_warnings.fetch_add(1, std::memory_order_relaxed);
}

void Detection::rates(PoolTracer& pool, PoolState& ps, Clock::time_point now) {
  const double threshold = state_.churn_threshold.load(std::memory_order_relaxed);
  const auto window = std::chrono::duration_cast<Clock::duration>(state_.config().churn_window);
  SiteRegistry& registry = pool.registry();
  const std::vector<std::uint64_t> checkouts = registry.checkouts();  // named, then "other"
  const std::size_t named = checkouts.size() - 1;
  if (ps.rates.size() < checkouts.size()) {
    Rate other = ps.rates.empty() ? Rate{} : std::move(ps.rates.back());
    if (!ps.rates.empty()) ps.rates.pop_back();
    ps.rates.resize(named);
    ps.rates.push_back(std::move(other));
  }
  for (std::size_t i = 0; i <= named; ++i) {
    Rate& r = ps.rates[i];
    r.samples.push_back({now, checkouts[i]});
    // Keep the newest sample at or before the window's start.
    while (r.samples.size() > 1 && r.samples[1].time <= now - window)
      r.samples.erase(r.samples.begin());
    if (threshold <= 0 || r.samples.size() < 2) continue;
    const double span = std::chrono::duration<double>(now - r.samples.front().time).count();
    // Judge on at least a quarter of the window, so a burst in one short
    // tick is not extrapolated.
    if (span < std::chrono::duration<double>(window).count() / 4) continue;
    const double rate = static_cast<double>(checkouts[i] - r.samples.front().checkouts) / span;
    if (rate <= threshold || (r.warned && now - *r.warned < window)) continue;
    r.warned = now;
    const std::string name =
        registry.name(static_cast<std::uint32_t>(i < named ? i : registry.max_sites()));
    state_.logger().warn(
        "Session churn at {}{} (pool={}): {:.0f} checkouts/s over the last {:.1f} s "
        "(churn_threshold {:g}/s). Acquiring in a loop? {}",
        name, name == "other" ? " (sites past max_sites)" : "", log_text(pool.pool_name()), rate,
        span, threshold, kFix);
    state_.churn_warnings.fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace poolscope::tracing::detail
