#include "poolscope/tracing/tracer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>

#include "pool_tracer.h"
#include "tracer_state.h"

namespace poolscope::tracing {
namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void invalid(std::string_view field, std::string_view rule, const std::string& got) {
  throw std::invalid_argument("TracerConfig." + std::string(field) + " " + std::string(rule) +
                              " (got " + got + ")");
}

// Samples every site's acquire count each tick and warns, at most once per
// window, about a site whose rate over the window passes the threshold.
// Runs on the tracer's thread only.
class ChurnDetector {
 public:
  explicit ChurnDetector(detail::TracerState& state) : state_(state) {}

  void tick() {
    const double threshold = state_.churn_threshold.load(std::memory_order_relaxed);
    const auto window = std::chrono::duration_cast<Clock::duration>(state_.config().churn_window);
    const Clock::time_point now = Clock::now();
    const std::vector<std::shared_ptr<detail::PoolTracer>> pools = state_.pools();
    // Forget pools that went away.
    std::erase_if(sites_, [&](const auto& entry) {
      return std::none_of(pools.begin(), pools.end(), [&](const auto& p) { return p.get() == entry.first; });
    });
    for (const std::shared_ptr<detail::PoolTracer>& pool : pools) {
      const std::vector<std::uint64_t> acquires = pool->registry().acquires();
      std::vector<Site>& sites = sites_[pool.get()];
      if (sites.size() < acquires.size()) sites.resize(acquires.size());
      for (std::size_t i = 0; i < acquires.size(); ++i) {
        std::deque<Sample>& s = sites[i].samples;
        s.push_back({now, acquires[i]});
        // Keep the newest sample at or before the window's start.
        while (s.size() > 1 && s[1].time <= now - window) s.pop_front();
        if (threshold <= 0 || s.size() < 2) continue;
        const double span = std::chrono::duration<double>(now - s.front().time).count();
        // Judge on at least a quarter of the window, so a burst in one short
        // tick is not extrapolated.
        if (span < std::chrono::duration<double>(window).count() / 4) continue;
        const double rate = static_cast<double>(acquires[i] - s.front().acquires) / span;
        if (rate <= threshold || (sites[i].warned && now - *sites[i].warned < window)) continue;
        sites[i].warned = now;
        warn(*pool, static_cast<std::uint32_t>(i), rate, span, threshold);
      }
    }
  }

 private:
  struct Sample {
    Clock::time_point time;
    std::uint64_t acquires;
  };
  struct Site {
    std::deque<Sample> samples;
    std::optional<Clock::time_point> warned;
  };

  void warn(detail::PoolTracer& pool, std::uint32_t site, double rate, double span, double threshold) {
    const std::string name = pool.registry().name(site);
    state_.logger().warn(
        "Session churn at {}{} (pool={}): {:.0f} acquires/s over the last {:.1f} s "
        "(churn_threshold {:g}/s). Acquiring in a loop? Hold one lease around the loop (nested "
        "acquire() calls share it), or cache what the loop reads.",
        name, name == "other" ? " (sites past max_sites)" : "", pool.pool_name(), rate, span, threshold);
    state_.churn_warnings.fetch_add(1, std::memory_order_relaxed);
  }

  detail::TracerState& state_;
  std::map<const detail::PoolTracer*, std::vector<Site>> sites_;
};

// Sorts a site table by order, keeping "other" last.
void sort_sites(std::vector<SiteStats>& sites, SiteOrder order) {
  auto key = [order](const SiteStats& s) {
    switch (order) {
      case SiteOrder::kTotalHold:
        return std::make_tuple(s.total_hold.count(), static_cast<std::int64_t>(s.acquires));
      case SiteOrder::kMaxHold:
        return std::make_tuple(s.max_hold.count(), s.total_hold.count());
      case SiteOrder::kAcquires:
        break;
    }
    return std::make_tuple(static_cast<std::int64_t>(s.acquires), s.total_hold.count());
  };
  std::stable_sort(sites.begin(), sites.end(), [&](const SiteStats& a, const SiteStats& b) {
    if (a.other != b.other) return b.other;
    return key(a) > key(b);
  });
}

void housekeeping(std::stop_token stop, std::shared_ptr<detail::TracerState> state) {
  const TracerConfig& config = state->config();
  // Ten samples per churn window; leaks checked at least four times per threshold.
  auto period = std::chrono::milliseconds(1000);
  if (config.churn_threshold > 0) period = std::min(period, config.churn_window / 10);
  if (config.leak_threshold.count() > 0) period = std::min(period, config.leak_threshold / 4);
  period = std::max(period, std::chrono::milliseconds(10));

  ChurnDetector churn(*state);
  std::mutex mu;
  std::condition_variable_any wake;
  std::unique_lock lock(mu);
  while (!stop.stop_requested()) {
    wake.wait_for(lock, stop, period, [] { return false; });
    if (stop.stop_requested()) break;
    try {
      state->scan_leaks();
      churn.tick();
    } catch (const std::exception& e) {
      // Never let a failed log write end detection.
      state->logger().error("poolscope tracer: detection round failed: {}", e.what());
    }
  }
}

}  // namespace

void TracerConfig::validate() const {
  if (max_sites < 1 || max_sites > 100'000) {
    invalid("max_sites", "must be from 1 to 100000", std::to_string(max_sites));
  }
  if (leak_threshold.count() < 0) {
    invalid("leak_threshold", "must not be negative", std::to_string(leak_threshold.count()) + " ms");
  }
  if (!(churn_threshold >= 0) || !std::isfinite(churn_threshold)) {
    invalid("churn_threshold", "must be a finite number >= 0", std::to_string(churn_threshold));
  }
  if (churn_window.count() <= 0) {
    invalid("churn_window", "must be positive", std::to_string(churn_window.count()) + " ms");
  }
  if (stack_depth > 32) invalid("stack_depth", "must be at most 32", std::to_string(stack_depth));
  if (session_level < spdlog::level::trace || session_level > spdlog::level::off) {
    invalid("session_level", "must be an spdlog level", std::to_string(static_cast<int>(session_level)));
  }
}

Tracer::Tracer(TracerConfig config) {
  config.validate();
  state_ = std::make_shared<detail::TracerState>(std::move(config));
  housekeeper_ = std::jthread(housekeeping, state_);
}

Tracer::Tracer(Pool& pool, TracerConfig config) : Tracer(std::move(config)) { attach(pool); }

Tracer::~Tracer() {
  housekeeper_.request_stop();
  if (housekeeper_.joinable()) housekeeper_.join();
  state_->detach_all();
}

void Tracer::attach(Pool& pool) { state_->attach(pool, state_); }

void Tracer::detach(Pool& pool) { state_->detach(pool); }

std::vector<SiteStats> Tracer::sites(SiteOrder order) const {
  std::vector<SiteStats> merged;
  std::map<std::string, std::size_t> index;
  for (PoolSites& table : state_->pool_sites()) {
    for (SiteStats& s : table.sites) {
      auto [it, added] = index.emplace(s.name, merged.size());
      if (added) {
        merged.push_back(std::move(s));
        continue;
      }
      SiteStats& m = merged[it->second];
      m.acquires += s.acquires;
      m.reuses += s.reuses;
      m.connections_opened += s.connections_opened;
      m.timeouts += s.timeouts;
      m.leaks += s.leaks;
      m.total_hold += s.total_hold;
      m.max_hold = std::max(m.max_hold, s.max_hold);
    }
  }
  if (index.find("other") == index.end()) merged.push_back(SiteStats{.name = "other", .other = true});
  sort_sites(merged, order);
  return merged;
}

std::vector<PoolSites> Tracer::pool_sites(SiteOrder order) const {
  std::vector<PoolSites> out = state_->pool_sites();
  for (PoolSites& p : out) sort_sites(p.sites, order);
  return out;
}

std::uint64_t Tracer::folded_sites() const {
  std::uint64_t folded = 0;
  for (const auto& pool : state_->pools()) folded += pool->registry().folded();
  return folded;
}

TracerStats Tracer::stats() const {
  return {state_->churn_warnings.load(std::memory_order_relaxed),
          state_->leaks_reported.load(std::memory_order_relaxed),
          state_->leaks_returned.load(std::memory_order_relaxed)};
}

void Tracer::set_churn_threshold(double acquires_per_second) {
  if (!(acquires_per_second >= 0) || !std::isfinite(acquires_per_second)) {
    throw std::invalid_argument("Tracer::set_churn_threshold: must be a finite number >= 0 (got " +
                                std::to_string(acquires_per_second) + ")");
  }
  state_->churn_threshold.store(acquires_per_second, std::memory_order_relaxed);
}

double Tracer::churn_threshold() const {
  return state_->churn_threshold.load(std::memory_order_relaxed);
}

const TracerConfig& Tracer::config() const { return state_->config(); }

}  // namespace poolscope::tracing
