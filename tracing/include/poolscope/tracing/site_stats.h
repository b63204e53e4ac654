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

  // Checkouts from the pool: those whose lease came back, plus the leases
  // still out when the table was read (as PoolStats::acquires counts). A
  // lease in the middle of coming back may be missed for that instant.
  std::uint64_t acquires = 0;
  // Checkouts whose lease came back. Unlike acquires it never goes down
  // between two reads (a lease out is not in it), so it is what the
  // poolscope_site_acquires_total counter exports.
  std::uint64_t checkins = 0;
  std::uint64_t reuses = 0;              // nested acquires served by the thread's lease
  std::uint64_t connections_opened = 0;  // physical connections opened for this site
  std::uint64_t timeouts = 0;
  std::uint64_t leaks = 0;  // leases reported past leak_threshold
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
