// Detection: one round of everything the tracer does on its own thread, for
// every attached pool: the leases-out gauge and leak reports, churn reports
// (by shape, and by rate when that option is on), the timeout summaries and
// the periodic statistics line. Tracer runs a round every period() on a
// PeriodicWorker.
//
// Pools are told apart by their registry's id, which is never reused (a pool
// attached later at the same address starts afresh).
//
// Not thread-safe: one thread runs the rounds.

#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "pool_tracer.h"
#include "tracer_state.h"

namespace poolscope::tracing::detail {

class Detection {
 public:
  using Clock = std::chrono::steady_clock;

  explicit Detection(TracerState& state) : state_(state) {}

  // How often rounds run for config: often enough for each interval it
  // serves (ten samples per churn window, four per leak threshold or log
  // interval), from 10 ms to 1 s.
  static std::chrono::milliseconds period(const TracerConfig& config);

  // One round. Never throws.
  void round() noexcept;

 private:
  // The shape detector's memory of one site.
  struct Shape {
    std::uint64_t loops = 0;
    std::uint64_t latest_sum = 0;
    // A loop was seen: reported next round, when it has most likely ended
    // and its length is known (a loop that goes on is reported as it is).
    bool pending = false;
    std::optional<SiteRegistry::Loop> loop;  // the one noted first
    bool reported = false;                   // and not quiet since
    Clock::time_point active;
  };
  // The rate option's samples of one site.
  struct Sample {
    Clock::time_point time;
    std::uint64_t checkouts;
  };
  struct Rate {
    std::vector<Sample> samples;  // oldest first
    std::optional<Clock::time_point> warned;
  };
  struct PoolState {
    std::vector<Shape> shapes;  // by site index, "other" last
    std::vector<Rate> rates;    // likewise
    Clock::time_point stats_logged;
  };

  void round(const TracerState::Attached& pool, PoolState& ps, Clock::time_point now);
  void shapes(PoolTracer& pool, PoolState& ps, Clock::time_point now);
  void report_shape(PoolTracer& pool, std::uint32_t index, const LoopCounts& counts,
                    const std::optional<SiteRegistry::Loop>& loop);
  void rates(PoolTracer& pool, PoolState& ps, Clock::time_point now);

  TracerState& state_;
  std::map<std::uint64_t, PoolState> pools_;  // by SiteRegistry::id()
};

}  // namespace poolscope::tracing::detail
