#include "poolscope/cache/redis/redis_stats.h"

namespace poolscope::cache {

const char* to_string(RedisTierState state) noexcept {
  switch (state) {
    case RedisTierState::kUp:
      return "up";
    case RedisTierState::kBackingOff:
      return "backing_off";
    case RedisTierState::kProbing:
      return "probing";
  }
  return "unknown";
}

}  // namespace poolscope::cache
