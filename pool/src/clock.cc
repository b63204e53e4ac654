#include "clock.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace poolscope::detail {
namespace {

#if defined(__x86_64__)
std::string read_file(const char* path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The TSC ticks at a constant rate in every power state, and the kernel
// trusts it enough to use it for its own clock (it switches away from a TSC
// it finds unstable).
bool tsc_is_reliable() {
  if (const char* forced = std::getenv("POOLSCOPE_CLOCK");
      forced != nullptr && std::string(forced) == "steady") {
    return false;
  }
  const std::string cpuinfo = read_file("/proc/cpuinfo");
  const bool invariant = cpuinfo.find(" constant_tsc") != std::string::npos &&
                         cpuinfo.find(" nonstop_tsc") != std::string::npos;
  const std::string source =
      read_file("/sys/devices/system/clocksource/clocksource0/current_clocksource");
  return invariant && source.rfind("tsc", 0) == 0;
}

// The tightest of several (tsc, steady) pairs: the TSC read on either side
// of the clock read, the pair whose bracket is narrowest kept. A preemption
// or an interrupt inside one read widens that bracket, so it loses.
ClockSample tight_sample() {
  ClockSample best;
  for (int i = 0; i < 16; ++i) {
    const std::uint64_t before = __rdtsc();
    const std::int64_t ns = steady_ns();
    const std::uint64_t after = __rdtsc();
    if (after < before) continue;
    if (i == 0 || after - before < best.bracket)
      best = {before + (after - before) / 2, ns, after - before};
  }
  return best;
}

void spin_until(std::int64_t ns) {
  while (steady_ns() < ns) {
  }
}
#endif

}  // namespace

TscScale scale_from_samples(const ClockSample& a, const ClockSample& b,
                            const ClockSample& c) noexcept {
  TscScale scale;
  if (b.tsc <= a.tsc || c.tsc <= b.tsc || b.ns <= a.ns || c.ns <= b.ns) return scale;
  const long double first =
      static_cast<long double>(b.ns - a.ns) / static_cast<long double>(b.tsc - a.tsc);
  const long double second =
      static_cast<long double>(c.ns - b.ns) / static_cast<long double>(c.tsc - b.tsc);
  // Two windows must agree to 0.05%: one skewed sample (a preemption the
  // bracket missed, a migration to a core whose TSC is off) cannot.
  const long double diff = first > second ? first - second : second - first;
  if (diff > first * 5e-4L) return scale;
  // And the rate must be one a CPU has: 100 MHz to 10 GHz.
  const long double ns_per_tick =
      static_cast<long double>(c.ns - a.ns) / static_cast<long double>(c.tsc - a.tsc);
  if (ns_per_tick < 0.1L || ns_per_tick > 10.0L) return scale;
  scale.mult = static_cast<std::uint64_t>(ns_per_tick * 4294967296.0L);
  scale.tsc0 = c.tsc;
  scale.ns0 = c.ns;
  scale.enabled = scale.mult > 0;
  return scale;
}

TscScale calibrate_tsc() noexcept {
#if defined(__x86_64__)
  try {
    if (!tsc_is_reliable()) return TscScale{};
    // Two 4 ms windows; a calibration whose windows disagree is retried, and
    // after three such tries steady_clock it is.
    for (int attempt = 0; attempt < 3; ++attempt) {
      const ClockSample a = tight_sample();
      spin_until(a.ns + 4'000'000);
      const ClockSample b = tight_sample();
      spin_until(b.ns + 4'000'000);
      const ClockSample c = tight_sample();
      if (const TscScale scale = scale_from_samples(a, b, c); scale.enabled) return scale;
    }
    return TscScale{};
  } catch (...) {
    return TscScale{};  // reading /proc failed: steady_clock it is
  }
#else
  return TscScale{};
#endif
}

}  // namespace poolscope::detail
