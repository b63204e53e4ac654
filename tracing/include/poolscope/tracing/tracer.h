// Tracer: where every session comes from. Attached to one or more pools it
//   - logs one line per physical connection opened, in the incidents' format
//     ("Database session created (id=7, pool=main, url=...) [Called from:
//     api/account.cc:Account():92 <- ui/widget.cc:Render():41]"), and why
//     each closed; the pool's start, configuration (debug), statistics
//     (debug, periodically) and shutdown; the database's notices; checkout
//     timeouts, the first at once and then one summary line per interval;
//   - keeps per-call-site statistics (checkouts, reuses, connections opened,
//     hold time, timeouts, leaks, leases out), bounded by max_sites;
//   - reports leases held past leak_threshold once, and again when they come
//     back (HikariCP's leak detection), and leases still out at shutdown;
//   - reports session churn by its shape (below), naming the site, the loop
//     and its callers, and the fix.
//
// Churn, by shape. The incidents' churn is one thread taking a lease from
// the same site again and again inside one unit of work (a loop over rows),
// with next to nothing between one lease coming back and the next going
// out: a settings read is ~10 us of query and ~0.3 us of loop (a gap of
// 2% of the hold, under a microsecond in 99 of 100). A busy endpoint takes
// one lease per request, and between two of its leases a thread does the
// rest of a request: it sends the response and reads the next request (two
// system calls on a socket, 1.3 us at the very least on this project's
// machines, 2-5 us when it drains a backlog) or waits for one. The ratio
// alone cannot tell the two apart: a thread preempted while it holds a
// lease holds it for tens of microseconds, and a backlog drained after
// that has gaps of a few percent of such holds. So, per thread and site, a
// checkout continues a loop when
//   - the thread's previous lease from that site served no nested acquire()
//     (a lease that did is a unit of work's own lease: the fix, not the bug),
//   - and this checkout came at most churn_gap (2 us) after that lease came
//     back: no system call between them,
//   - and at most an eighth as long after it as that lease was held: the
//     thread spends nearly all its time (8/9 or more) holding these leases.
// churn_loop (20) checkouts in a row make a churn loop. A site with one is
// reported once, with the loop's length and (with capture_stacks) its
// callers, and again only after churn_quiet without any. Checkouts per
// second play no part, so the rule holds at any load: a request loop meets
// it only if it does next to nothing but hold its lease, back to back,
// without I/O between leases (a worker draining an in-memory queue one
// short lease per item, for which one lease or one query per batch is the
// fix too). `churn_threshold` is the old rate threshold, as an option.
//
// Detection and logging of summaries run on the tracer's own thread; a
// traced lease costs a few counter updates on its own thread when it comes
// back, nothing when it goes out (unless capture_stacks).
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
#include <vector>

#include "poolscope/pool/pool.h"
#include "poolscope/tracing/site_stats.h"

namespace spdlog {
class logger;
}

namespace poolscope::detail {
class PeriodicWorker;
}

namespace poolscope::tracing {

namespace detail {
class TracerState;
}

struct TracerConfig {
  // Where the lines go. Null: the spdlog logger named "poolscope", created on
  // stderr if the application has not registered one.
  std::shared_ptr<spdlog::logger> logger{};

  // Level of the session log (connections opened and closed, pool started
  // and shut down). Timeouts, leaks, churn and failed connects are logged at
  // warn; the configuration and the periodic statistics at debug.
  spdlog::level::level_enum session_level = spdlog::level::info;

  // Distinct call sites tracked per pool; later ones fold into "other".
  std::size_t max_sites = 256;

  // A lease held longer than this is reported (HikariCP's
  // leakDetectionThreshold). Zero: no leak detection.
  std::chrono::milliseconds leak_threshold{30'000};

  // Churn by shape (see the class comment): checkouts in a row that make a
  // loop (zero: no churn detection by shape), the longest gap between a
  // lease coming back and the next checkout in a loop (a loop's own code,
  // no system call), and how long a reported site must go without a loop
  // to be reported again.
  std::size_t churn_loop = 20;
  std::chrono::microseconds churn_gap{2};
  std::chrono::milliseconds churn_quiet{60'000};

  // Churn by rate, an option: checkouts per second at one site, over
  // churn_window, above which the site is reported (at most once per
  // window). Zero (the default): off. A busy site passes any fixed rate.
  double churn_threshold = 0;
  std::chrono::milliseconds churn_window{10'000};

  // Capture the caller's stack on every checkout, for the caller chains of
  // the session log, leak and churn reports. Costs about a microsecond per
  // checkout.
  bool capture_stacks = false;
  // Caller frames printed after the site.
  std::size_t stack_depth = 4;

  // Checkout timeouts: the first is logged at once, the ones after it in one
  // line per interval ("N checkout timeouts in the last 10.0 s, top sites
  // ..."), until an interval passes without any.
  std::chrono::milliseconds timeout_log_interval{10'000};
  // How often each pool's statistics are logged at debug (total, active,
  // idle, waiting), as HikariCP's housekeeper does. Zero: never.
  std::chrono::milliseconds stats_log_interval{30'000};

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
  std::uint64_t churn_warnings = 0;  // by shape and, if on, by rate
  std::uint64_t leaks_reported = 0;
  std::uint64_t leaks_returned = 0;  // reported leases that came back later
  std::uint64_t timeout_lines = 0;   // lines logged about checkout timeouts
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
  // Validates config (throws std::invalid_argument); starts the detection
  // thread.
  explicit Tracer(TracerConfig config = {});
  // As above, and attaches to pool.
  explicit Tracer(Pool& pool, TracerConfig config = {});
  ~Tracer();

  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;

  // Starts tracing pool (and logs its start line and configuration). Events
  // before this call are not seen.
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

  // Changes churn_threshold (checkouts per second; zero turns the rate
  // option off again). Churn by shape is unaffected.
  void set_churn_threshold(double checkouts_per_second);
  double churn_threshold() const;

  const TracerConfig& config() const;

  // A weak reference to this tracer.
  TracerView view() const;

 private:
  std::shared_ptr<detail::TracerState> state_;
  std::unique_ptr<poolscope::detail::PeriodicWorker> detection_;  // last: stops first
};

}  // namespace poolscope::tracing
