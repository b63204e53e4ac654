// Tracer: where every session comes from. Attached to one or more pools it
//   - logs one line per physical connection opened, in the incidents' format
//     ("Database session created (id=7, pool=main, url=...) [Called from:
//     account.cc:Account():92 <- widget.cc:Render():41]"), and why each closed;
//   - keeps per-call-site statistics (acquires, reuses, connections opened,
//     hold time, timeouts, leaks), bounded by max_sites;
//   - reports leases held past leak_threshold once, and again when they come
//     back (HikariCP's leak detection), and leases still out at shutdown;
//   - warns when a site's acquire rate passes churn_threshold (sessions taken
//     in a loop), naming the site, the rate and the fix.
// Leak and churn detection run on the tracer's own thread, never per acquire.
//
// The class is thread-safe. No concurrent call to any API of this type causes
// a data race. A Tracer may be destroyed before or after the pools it traces.

#pragma once

#include <spdlog/common.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "poolscope/pool/pool.h"
#include "poolscope/tracing/site_stats.h"

namespace spdlog {
class logger;
}

namespace poolscope::tracing {

namespace detail {
class TracerState;
}

struct TracerConfig {
  // Where the lines go. Null: the spdlog logger named "poolscope", created on
  // stderr if the application has not registered one.
  std::shared_ptr<spdlog::logger> logger;

  // Level of the session log (connections opened and closed). Timeouts,
  // leaks, churn and failed connects are logged at warn.
  spdlog::level::level_enum session_level = spdlog::level::info;

  // Distinct call sites tracked; later ones fold into "other".
  std::size_t max_sites = 256;

  // A lease held longer than this is reported (HikariCP's
  // leakDetectionThreshold). Zero: no leak detection.
  std::chrono::milliseconds leak_threshold{30'000};

  // Acquires per second at one site, over churn_window, above which the site
  // gets a churn warning (at most one per window). Zero: no churn detection.
  double churn_threshold = 50.0;
  std::chrono::milliseconds churn_window{10'000};

  // Capture the caller's stack on every checkout, for the session log's
  // caller chain and leak reports. Costs about a microsecond per checkout.
  bool capture_stacks = false;
  // Caller frames printed after the site.
  std::size_t stack_depth = 4;

  // Throws std::invalid_argument naming the first invalid field and its value.
  void validate() const;
};

// One attached pool's call-site table.
struct PoolSites {
  std::string pool;
  std::vector<SiteStats> sites;  // sorted as asked, "other" last
  std::uint64_t folded_sites = 0;
  std::uint64_t leaks_reported = 0;
};

// What the detectors have reported so far.
struct TracerStats {
  std::uint64_t churn_warnings = 0;
  std::uint64_t leaks_reported = 0;
  std::uint64_t leaks_returned = 0;  // reported leases that came back later
};

// TracerView: a reference to a Tracer that may be kept after the tracer is
// gone, for code that reads it from another thread (a metrics scrape). Once
// the tracer's destructor has started, every read returns nullopt.
//
// Copyable. The class is thread-safe. No concurrent call to any API of this
// type causes a data race.
class TracerView {
 public:
  TracerView() = default;

  // As Tracer::pool_sites() and Tracer::stats().
  std::optional<std::vector<PoolSites>> pool_sites(SiteOrder order = SiteOrder::kAcquires) const;
  std::optional<TracerStats> stats() const;

  bool expired() const;

 private:
  friend class Tracer;
  std::weak_ptr<detail::TracerState> state_;
};

class Tracer {
 public:
  // Validates config; starts the detection thread.
  explicit Tracer(TracerConfig config = {});
  // As above, and attaches to pool.
  explicit Tracer(Pool& pool, TracerConfig config = {});
  ~Tracer();

  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;

  // Starts tracing pool. Events before this call are not seen.
  // Throws std::invalid_argument if pool is already attached.
  void attach(Pool& pool);
  // Stops tracing pool. No effect if it is not attached.
  void detach(Pool& pool);

  // The call-site table of every attached pool together (a site used with
  // two pools appears once, with both pools' figures), sorted by order.
  // "other" is always last. Sites are tracked per pool, max_sites each.
  std::vector<SiteStats> sites(SiteOrder order = SiteOrder::kAcquires) const;

  // The call-site table of each attached pool.
  std::vector<PoolSites> pool_sites(SiteOrder order = SiteOrder::kAcquires) const;

  // How many distinct sites were folded into "other", over all pools.
  std::uint64_t folded_sites() const;

  TracerStats stats() const;

  // Changes churn_threshold (acquires per second; zero turns churn warnings off).
  void set_churn_threshold(double acquires_per_second);
  double churn_threshold() const;

  const TracerConfig& config() const;

  // A weak reference to this tracer.
  TracerView view() const;

 private:
  std::shared_ptr<detail::TracerState> state_;
  std::jthread housekeeper_;
};

}  // namespace poolscope::tracing
