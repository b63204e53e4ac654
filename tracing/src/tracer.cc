#include "poolscope/tracing/tracer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>
#include <string>
#include <tuple>

#include "detection.h"
#include "pool_tracer.h"
#include "poolscope/base/config_check.h"
#include "poolscope/base/periodic_worker.h"
#include "tracer_state.h"

namespace poolscope::tracing {
namespace {

[[noreturn]] void invalid(std::string_view field, std::string_view rule, const std::string& got) {
  poolscope::detail::invalid_field("TracerConfig", field, rule, got);
}

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

// Each attached pool's site table, read from its registry as it is.
std::vector<PoolSites> read_pool_sites(const detail::TracerState& state, SiteOrder order) {
  std::vector<PoolSites> out;
  for (const detail::TracerState::Attached& a : state.pools()) {
    const detail::SiteRegistry& registry = a.tracer->registry();
    PoolSites table{a.tracer->pool_name(), registry.snapshot(), registry.folded(), 0};
    for (const SiteStats& s : table.sites) table.leaks_reported += s.leaks;
    sort_sites(table.sites, order);
    out.push_back(std::move(table));
  }
  return out;
}

TracerStats read_stats(const detail::TracerState& state) {
  return {state.churn_warnings.load(std::memory_order_relaxed),
          state.leaks_reported.load(std::memory_order_relaxed),
          state.leaks_returned.load(std::memory_order_relaxed),
          state.timeout_lines.load(std::memory_order_relaxed)};
}

}  // namespace

void TracerConfig::validate() const {
  using poolscope::detail::check_not_negative;
  using poolscope::detail::check_positive;
  if (max_sites < 1 || max_sites > 100'000) {
    invalid("max_sites", "must be from 1 to 100000", std::to_string(max_sites));
  }
  check_not_negative("TracerConfig", "leak_threshold", leak_threshold);
  if (churn_loop == 1 || churn_loop > 1'000'000) {
    invalid("churn_loop", "must be 0 (off) or from 2 to 1000000", std::to_string(churn_loop));
  }
  if (churn_gap.count() <= 0 || churn_gap > std::chrono::seconds(1)) {
    invalid("churn_gap", "must be from 1 us to 1 s", std::to_string(churn_gap.count()) + " us");
  }
  check_not_negative("TracerConfig", "churn_quiet", churn_quiet);
  if (!(churn_threshold >= 0) || !std::isfinite(churn_threshold)) {
    invalid("churn_threshold", "must be a finite number >= 0", std::to_string(churn_threshold));
  }
  check_positive("TracerConfig", "churn_window", churn_window);
  if (stack_depth > 32) invalid("stack_depth", "must be at most 32", std::to_string(stack_depth));
  if (session_level < spdlog::level::trace || session_level > spdlog::level::off) {
    invalid("session_level", "must be an spdlog level",
            std::to_string(static_cast<int>(session_level)));
  }
  check_positive("TracerConfig", "timeout_log_interval", timeout_log_interval);
  check_not_negative("TracerConfig", "stats_log_interval", stats_log_interval);
}

Tracer::Tracer(TracerConfig config) {
  config.validate();
  state_ = std::make_shared<detail::TracerState>(std::move(config));
  auto detection = std::make_shared<detail::Detection>(*state_);
  // The task keeps the state alive for as long as it may run.
  detection_ = std::make_unique<poolscope::detail::PeriodicWorker>(
      detail::Detection::period(state_->config()),
      [state = state_, detection](std::stop_token) { detection->round(); });
}

Tracer::Tracer(Pool& pool, TracerConfig config) : Tracer(std::move(config)) { attach(pool); }

Tracer::~Tracer() {
  state_->closed.store(true, std::memory_order_release);
  detection_->stop();
  state_->detach_all();
}

void Tracer::attach(Pool& pool) { state_->attach(pool, state_); }

void Tracer::detach(Pool& pool) { state_->detach(pool); }

std::vector<SiteStats> Tracer::sites(SiteOrder order) const {
  std::vector<SiteStats> merged;
  std::map<std::string, std::size_t> index;
  for (PoolSites& table : read_pool_sites(*state_, order)) {
    for (SiteStats& s : table.sites) {
      auto [it, added] = index.emplace(s.name, merged.size());
      if (added) {
        merged.push_back(std::move(s));
        continue;
      }
      detail::merge(merged[it->second], s);
    }
  }
  if (index.find("other") == index.end()) {
    merged.push_back(SiteStats{.name = "other", .other = true});
  }
  sort_sites(merged, order);
  return merged;
}

std::vector<PoolSites> Tracer::pool_sites(SiteOrder order) const {
  return read_pool_sites(*state_, order);
}

TracerView Tracer::view() const {
  TracerView v;
  v.state_ = state_;
  return v;
}

std::optional<std::vector<PoolSites>> TracerView::pool_sites(SiteOrder order) const {
  const std::shared_ptr<detail::TracerState> state = state_.lock();
  if (state == nullptr || state->closed.load(std::memory_order_acquire)) return std::nullopt;
  return read_pool_sites(*state, order);
}

std::optional<TracerStats> TracerView::stats() const {
  const std::shared_ptr<detail::TracerState> state = state_.lock();
  if (state == nullptr || state->closed.load(std::memory_order_acquire)) return std::nullopt;
  return read_stats(*state);
}

bool TracerView::expired() const {
  const std::shared_ptr<detail::TracerState> state = state_.lock();
  return state == nullptr || state->closed.load(std::memory_order_acquire);
}

std::uint64_t Tracer::folded_sites() const {
  std::uint64_t folded = 0;
  for (const auto& pool : state_->pools()) folded += pool.tracer->registry().folded();
  return folded;
}

TracerStats Tracer::stats() const { return read_stats(*state_); }

void Tracer::set_churn_threshold(double checkouts_per_second) {
  if (!(checkouts_per_second >= 0) || !std::isfinite(checkouts_per_second)) {
    throw std::invalid_argument("Tracer::set_churn_threshold: must be a finite number >= 0 (got " +
                                std::to_string(checkouts_per_second) + ")");
  }
  state_->churn_threshold.store(checkouts_per_second, std::memory_order_relaxed);
}

double Tracer::churn_threshold() const {
  return state_->churn_threshold.load(std::memory_order_relaxed);
}

const TracerConfig& Tracer::config() const { return state_->config(); }

}  // namespace poolscope::tracing
