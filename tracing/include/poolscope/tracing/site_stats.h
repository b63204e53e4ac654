// SiteStats: what one call site did with a pool, as Tracer::sites() reports
// it. A plain value.

#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace poolscope::tracing {

struct SiteStats {
  // "api/settings.cc:Load():237" (see poolscope/base/site.h), or "other" for
  // the sites folded past the cap.
  std::string name;
  std::string file;      // full file name as the compiler saw it; empty for "other"
  std::string function;  // the compiler's function signature; empty for "other"
  std::uint32_t line = 0;
  bool other = false;

  // Counters: they never go down from one read to the next.
  // Checkouts from the pool, each counted when its lease comes back (with
  // its hold time): a lease still out is in `active`, not here yet.
  std::uint64_t acquires = 0;
  // The same as acquires (both are counted at checkin); kept for code that
  // read it before acquires meant the same. Use acquires.
  std::uint64_t checkins = 0;
  std::uint64_t reuses = 0;              // nested acquires made here, served by the thread's lease
  std::uint64_t connections_opened = 0;  // physical connections opened for this site
  std::uint64_t timeouts = 0;
  std::uint64_t leaks = 0;        // leases reported past leak_threshold
  std::uint64_t churn_loops = 0;  // loops of TracerConfig::churn_loop checkouts in a row
  std::chrono::nanoseconds total_hold{0};
  std::chrono::nanoseconds max_hold{0};

  // Gauge: leases from this site out when the tracer last looked (it looks
  // once per detection round, at least every second).
  std::uint64_t active = 0;
};

// How Tracer::sites() sorts: what a person asks first.
enum class SiteOrder {
  kAcquires,   // most checkouts first (churn), then longest total hold
  kTotalHold,  // longest total hold first (who keeps connections busy)
  kMaxHold,    // longest single hold first (leaks, slow transactions)
};

}  // namespace poolscope::tracing
