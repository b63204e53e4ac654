#include "poolscope/cache/clock.h"

#include <ctime>

namespace poolscope::cache {

std::shared_ptr<CacheClock> default_clock() {
  static const std::shared_ptr<CacheClock> clock = std::make_shared<CoarseClock>();
  return clock;
}

}  // namespace poolscope::cache
