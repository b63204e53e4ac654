#include "poolscope/tracing/tracer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>

#include "pool_tracer.h"
#include "poolscope/base/config_check.h"
#include "poolscope/pool/errors.h"
#include "tracer_state.h"

namespace poolscope::tracing {
namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void invalid(std::string_view field, std::string_view rule, const std::string& got) {
  poolscope::detail::invalid_field("TracerConfig", field, rule, got);
}

// Samples every site's acquire count each tick and warns, at most once per
// window, about a site whose rate over the window passes the threshold.
// Pools are told apart by their registry's id, which is never reused (a pool
// attached later at the same address starts afresh). Runs on the tracer's
// thread only.
class ChurnDetector {
 public:
  explicit ChurnDetector(detail::TracerState& state) : state_(state) {}

  void tick() {
    const double threshold = state_.churn_threshold.load(std::memory_order_relaxed);
    const auto window = std::chrono::duration_cast<Clock::duration>(state_.config().churn_window);
    const Clock::time_point now = Clock::now();
    const std::vector<std::shared_ptr<detail::PoolTracer>> pools = state_.pools();
    // Forget pools that went away.
    std::erase_if(pools_, [&](const auto& entry) {
      return std::none_of(pools.begin(), pools.end(),
                          [&](const auto& p) { return p->registry().id() == entry.first; });
    });
    for (const std::shared_ptr<detail::PoolTracer>& pool : pools) {
      detail::SiteRegistry& registry = pool->registry();
      const std::vector<std::uint64_t> acquires = registry.acquires();  // named sites, then "other"
      PoolSamples& samples = pools_[registry.id()];
      const std::size_t named = acquires.size() - 1;
      if (samples.named.size() < named) samples.named.resize(named);
      for (std::size_t i = 0; i <= named; ++i) {
        const auto index = static_cast<std::uint32_t>(i < named ? i : registry.max_sites());
        Site& site = i < named ? samples.named[i] : samples.other;
        if (const std::optional<double> rate = site.sample(now, acquires[i], window, threshold)) {
          warn(*pool, index, *rate,
               std::chrono::duration<double>(now - site.samples.front().time).count(), threshold);
        }
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

    // Records a sample; returns the rate when it deserves a warning.
    std::optional<double> sample(Clock::time_point now, std::uint64_t acquires,
                                 Clock::duration window, double threshold) {
      // A count never goes down; if one does, its history is not this one.
      if (!samples.empty() && acquires < samples.back().acquires) samples.clear();
      samples.push_back({now, acquires});
      // Keep the newest sample at or before the window's start.
      while (samples.size() > 1 && samples[1].time <= now - window) samples.pop_front();
      if (threshold <= 0 || samples.size() < 2) return std::nullopt;
      const double span = std::chrono::duration<double>(now - samples.front().time).count();
      // Judge on at least a quarter of the window, so a burst in one short
      // tick is not extrapolated.
      if (span < std::chrono::duration<double>(window).count() / 4) return std::nullopt;
      const double rate = static_cast<double>(acquires - samples.front().acquires) / span;
      if (rate <= threshold || (warned && now - *warned < window)) return std::nullopt;
      warned = now;
      return rate;
    }
  };
  struct PoolSamples {
    std::vector<Site> named;  // by site index
    Site other;
  };

  void warn(detail::PoolTracer& pool, std::uint32_t site, double rate, double span,
            double threshold) {
    const std::string name = pool.registry().name(site);
    state_.logger().warn(
        "Session churn at {}{} (pool={}): {:.0f} acquires/s over the last {:.1f} s "
        "(churn_threshold {:g}/s). Acquiring in a loop? Hold one lease around the loop (nested "
        "acquire() calls share it), or cache what the loop reads.",
        name, name == "other" ? " (sites past max_sites)" : "", pool.pool_name(), rate, span,
        threshold);
    state_.churn_warnings.fetch_add(1, std::memory_order_relaxed);
  }

  detail::TracerState& state_;
  std::map<std::uint64_t, PoolSamples> pools_;  // by SiteRegistry::id()
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
  // Ten samples per churn window, whatever the threshold is now: it may be
  // turned on later (set_churn_threshold). Leaks checked at least four
  // times per threshold.
  auto period = std::min(std::chrono::milliseconds(1000), config.churn_window / 10);
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
    } catch (...) {
      // Never let a failure end detection (or the process: this is a thread).
      try {
        state->logger().error("poolscope tracer: detection round failed: {}",
                              exception_text(std::current_exception()));
      } catch (...) {
      }
    }
  }
}

}  // namespace

void TracerConfig::validate() const {
  if (max_sites < 1 || max_sites > 100'000) {
    invalid("max_sites", "must be from 1 to 100000", std::to_string(max_sites));
  }
  poolscope::detail::check_not_negative("TracerConfig", "leak_threshold", leak_threshold);
  if (!(churn_threshold >= 0) || !std::isfinite(churn_threshold)) {
    invalid("churn_threshold", "must be a finite number >= 0", std::to_string(churn_threshold));
  }
  poolscope::detail::check_positive("TracerConfig", "churn_window", churn_window);
  if (stack_depth > 32) invalid("stack_depth", "must be at most 32", std::to_string(stack_depth));
  if (session_level < spdlog::level::trace || session_level > spdlog::level::off) {
    invalid("session_level", "must be an spdlog level",
            std::to_string(static_cast<int>(session_level)));
  }
}

Tracer::Tracer(TracerConfig config) {
  config.validate();
  state_ = std::make_shared<detail::TracerState>(std::move(config));
  housekeeper_ = std::jthread(housekeeping, state_);
}

Tracer::Tracer(Pool& pool, TracerConfig config) : Tracer(std::move(config)) { attach(pool); }

Tracer::~Tracer() {
  state_->closed.store(true, std::memory_order_release);
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
      detail::merge(merged[it->second], s);
    }
  }
  if (index.find("other") == index.end())
    merged.push_back(SiteStats{.name = "other", .other = true});
  sort_sites(merged, order);
  return merged;
}

std::vector<PoolSites> Tracer::pool_sites(SiteOrder order) const {
  std::vector<PoolSites> out = state_->pool_sites();
  for (PoolSites& p : out) sort_sites(p.sites, order);
  return out;
}

TracerView Tracer::view() const {
  TracerView v;
  v.state_ = state_;
  return v;
}

std::optional<std::vector<PoolSites>> TracerView::pool_sites(SiteOrder order) const {
  const std::shared_ptr<detail::TracerState> state = state_.lock();
  if (state == nullptr || state->closed.load(std::memory_order_acquire)) return std::nullopt;
  std::vector<PoolSites> out = state->pool_sites();
  for (PoolSites& p : out) sort_sites(p.sites, order);
  return out;
}

std::optional<TracerStats> TracerView::stats() const {
  const std::shared_ptr<detail::TracerState> state = state_.lock();
  if (state == nullptr || state->closed.load(std::memory_order_acquire)) return std::nullopt;
  return TracerStats{state->churn_warnings.load(std::memory_order_relaxed),
                     state->leaks_reported.load(std::memory_order_relaxed),
                     state->leaks_returned.load(std::memory_order_relaxed)};
}

bool TracerView::expired() const {
  const std::shared_ptr<detail::TracerState> state = state_.lock();
  return state == nullptr || state->closed.load(std::memory_order_acquire);
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
