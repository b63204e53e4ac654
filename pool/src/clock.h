// The pool's time base: steady_clock in integer nanoseconds.

#pragma once

#include <chrono>
#include <cstdint>

namespace poolscope::detail {

inline std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace poolscope::detail
