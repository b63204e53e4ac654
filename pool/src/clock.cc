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

// A (tsc, steady) pair taken as close together as possible: the TSC read on
// either side of the clock read, averaged.
void sample(std::uint64_t* tsc, std::int64_t* ns) {
  const std::uint64_t before = __rdtsc();
  *ns = steady_ns();
  const std::uint64_t after = __rdtsc();
  *tsc = before + (after - before) / 2;
}

TscScale calibrate() {
  TscScale scale;
  if (!tsc_is_reliable()) return scale;
  std::uint64_t tsc0 = 0, tsc1 = 0;
  std::int64_t ns0 = 0, ns1 = 0;
  sample(&tsc0, &ns0);
  // 2 ms bounds the error of the ratio to a few parts in 100,000.
  do {
    sample(&tsc1, &ns1);
  } while (ns1 - ns0 < 2'000'000);
  if (tsc1 <= tsc0) return scale;
  const long double ns_per_tick =
      static_cast<long double>(ns1 - ns0) / static_cast<long double>(tsc1 - tsc0);
  scale.mult = static_cast<std::uint64_t>(ns_per_tick * 4294967296.0L);
  scale.tsc0 = tsc1;
  scale.ns0 = ns1;
  scale.enabled = scale.mult > 0;
  return scale;
}
#endif

}  // namespace

TscScale calibrate_tsc() noexcept {
#if defined(__x86_64__)
  try {
    return calibrate();
  } catch (...) {
    return TscScale{};  // reading /proc failed: steady_clock it is
  }
#else
  return TscScale{};
#endif
}

}  // namespace poolscope::detail
