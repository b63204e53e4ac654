#include "poolscope/cache/clock.h"

#include <ctime>

namespace poolscope::cache {

CacheClock::time_point CoarseClock::now() const noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return time_point(std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec));
}

std::shared_ptr<CacheClock> default_clock() {
  static const std::shared_ptr<CacheClock> clock = std::make_shared<CoarseClock>();
  return clock;
}

}  // namespace poolscope::cache
