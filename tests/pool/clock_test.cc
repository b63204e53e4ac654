// The pool's clock under load: every calibration, made while both cores are
// busy, must agree with steady_clock, or fall back to it.

#include "clock.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace poolscope::detail {
namespace {

using namespace std::chrono_literals;

#if defined(__x86_64__)
// A tight (tsc, steady) reading, as the test's own yardstick.
ClockSample reading() {
  ClockSample best;
  for (int i = 0; i < 16; ++i) {
    const std::uint64_t before = __rdtsc();
    const std::int64_t ns = steady_ns();
    const std::uint64_t after = __rdtsc();
    if (i == 0 || after - before < best.bracket)
      best = {before + (after - before) / 2, ns, after - before};
  }
  return best;
}

// Keeps every core busy while it lives.
class Load {
 public:
  Load() {
    const unsigned n = std::max(2u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < n; ++i) {
      threads_.emplace_back([this] {
        volatile std::uint64_t x = 0;
        while (!stop_.load(std::memory_order_relaxed)) x = x + 1;
      });
    }
  }
  ~Load() {
    stop_ = true;
    for (std::thread& t : threads_) t.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

TEST(PoolClockTest, CalibrationsUnderLoadAgreeWithSteadyClockOrFallBack) {
  Load load;
  int enabled = 0;
  int wrong = 0;
  for (int round = 0; round < 60; ++round) {
    const TscScale scale = calibrate_tsc();
    if (!scale.enabled) continue;  // fell back to steady_clock: always right
    ++enabled;
    // Measure 20 ms with the scale and with steady_clock.
    const ClockSample a = reading();
    std::this_thread::sleep_for(20ms);
    const ClockSample b = reading();
    const double scaled =
        static_cast<double>((static_cast<Uint128>(b.tsc - a.tsc) * scale.mult) >> 32);
    const double steady = static_cast<double>(b.ns - a.ns);
    // A reading preempted under load can be off by a few microseconds; the
    // skewed calibrations this guards against were off by 40-85%.
    if (std::abs(scaled - steady) > steady * 0.002 + 20'000) ++wrong;
  }
  EXPECT_EQ(wrong, 0) << "of " << enabled << " TSC calibrations made under load";
}

TEST(PoolClockTest, WindowsThatDisagreeFallBackToSteadyClock) {
  const ClockSample a{1'000'000, 1'000'000, 20};
  const ClockSample b{5'000'000, 2'000'000, 20};  // 0.25 ns per tick
  const ClockSample c{9'000'000, 4'000'000, 20};  // 0.5 ns per tick: a skewed sample
  EXPECT_FALSE(scale_from_samples(a, b, c).enabled);
  const ClockSample c_ok{9'000'000, 3'000'000, 20};
  const TscScale scale = scale_from_samples(a, b, c_ok);
  EXPECT_TRUE(scale.enabled);
  EXPECT_NEAR(static_cast<double>(scale.mult) / 4294967296.0, 0.25, 1e-9);
  // A rate no CPU has is refused as well.
  EXPECT_FALSE(scale_from_samples({1, 0, 1}, {2, 1'000'000, 1}, {3, 2'000'000, 1}).enabled);
}
#endif

TEST(PoolClockTest, PoolscopeClockSteadyForcesSteadyClock) {
  ::setenv("POOLSCOPE_CLOCK", "steady", 1);
  const TscScale scale = calibrate_tsc();
  ::unsetenv("POOLSCOPE_CLOCK");
  EXPECT_FALSE(scale.enabled);
}

TEST(PoolClockTest, NowNsMovesWithSteadyClock) {
  const std::int64_t a = now_ns();
  const std::int64_t s = steady_ns();
  std::this_thread::sleep_for(50ms);
  const double moved = static_cast<double>(now_ns() - a);
  const double steady = static_cast<double>(steady_ns() - s);
  EXPECT_NEAR(moved, steady, steady * 0.01 + 1e6);
}

}  // namespace
}  // namespace poolscope::detail
