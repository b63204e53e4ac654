// The pool's time base: monotonic nanoseconds, cheap enough to read twice per
// checkout. On x86-64 with an invariant TSC that the kernel itself uses as
// its clocksource, now_ns() reads the TSC and scales it (about a third of
// the cost of clock_gettime); elsewhere, or with POOLSCOPE_CLOCK=steady in
// the environment, it reads std::chrono::steady_clock. The TSC scale is
// calibrated against steady_clock on first use and anchored to it, so both
// kinds of reading share one epoch; only durations between two now_ns()
// readings are meaningful, as with any monotonic clock.
//
// Thread-safe.

#pragma once

#include <chrono>
#include <cstdint>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace poolscope::detail {

struct TscScale {
  bool enabled = false;
  std::uint64_t tsc0 = 0;  // TSC at the anchor
  std::int64_t ns0 = 0;    // steady_clock at the anchor
  std::uint64_t mult = 0;  // nanoseconds per tick, in 32.32 fixed point
};

// One reading of both clocks: the TSC (the middle of the two reads around
// the steady_clock read) and how many ticks those two reads were apart.
struct ClockSample {
  std::uint64_t tsc = 0;
  std::int64_t ns = 0;
  std::uint64_t bracket = 0;
};

// The scale from three samples spanning two windows, or a disabled one when
// the windows disagree or the rate is implausible.
TscScale scale_from_samples(const ClockSample& a, const ClockSample& b,
                            const ClockSample& c) noexcept;

// Measures the TSC against steady_clock (two 4 ms windows, each end the
// tightest of 16 readings, retried when they disagree); disabled when the
// TSC is not reliable here or no calibration was consistent.
TscScale calibrate_tsc() noexcept;

// Calibrated once, on the first call in the process.
inline const TscScale& tsc_scale() noexcept {
  static const TscScale scale = calibrate_tsc();
  return scale;
}

inline std::int64_t steady_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

#if defined(__x86_64__)
__extension__ typedef unsigned __int128 Uint128;  // one 64x64->128 multiply
#endif

inline std::int64_t now_ns() noexcept {
#if defined(__x86_64__)
  const TscScale& scale = tsc_scale();
  if (scale.enabled) {
    const std::uint64_t ticks = __rdtsc() - scale.tsc0;
    return scale.ns0 + static_cast<std::int64_t>((static_cast<Uint128>(ticks) * scale.mult) >> 32);
  }
#endif
  return steady_ns();
}

}  // namespace poolscope::detail
