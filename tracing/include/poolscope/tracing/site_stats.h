// SiteStats: what one call site did with a pool, as Tracer::sites() reports it.

#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace poolscope::tracing {

struct SiteStats {
  // "settings.cc:Load():237", or "other" for the sites folded past the cap.
  std::string name;
  std::string file;      // full file name as the compiler saw it; empty for "other"
  std::string function;  // the compiler's function signature; empty for "other"
  std::uint32_t line = 0;
  bool other = false;

  std::uint64_t acquires = 0;            // checkouts from the pool
  std::uint64_t reuses = 0;              // nested acquires served by the thread's lease
  std::uint64_t connections_opened = 0;  // physical connections opened for this site
  std::uint64_t timeouts = 0;
  std::uint64_t leaks = 0;               // leases reported past leak_threshold
  std::chrono::nanoseconds total_hold{0};
  std::chrono::nanoseconds max_hold{0};
};

// How Tracer::sites() sorts: what a person asks first.
enum class SiteOrder {
  kAcquires,   // most checkouts first (churn), then longest total hold
  kTotalHold,  // longest total hold first (who keeps connections busy)
  kMaxHold,    // longest single hold first (leaks, slow transactions)
};

}  // namespace poolscope::tracing
