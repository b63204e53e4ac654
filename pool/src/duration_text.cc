#include "poolscope/pool/duration_text.h"

#include <cmath>
#include <cstdio>

namespace poolscope {

std::string duration_text(double seconds) {
  if (seconds < 0) return "-" + duration_text(-seconds);
  const double ns = seconds * 1e9;
  char text[48];
  if (ns < 1e3) {
    std::snprintf(text, sizeof text, "%.0f ns", ns);
  } else if (ns < 1e6) {
    std::snprintf(text, sizeof text, "%.1f us", ns / 1e3);
  } else if (ns < 1e9) {
    std::snprintf(text, sizeof text, "%.1f ms", ns / 1e6);
  } else if (ns < 60e9) {
    std::snprintf(text, sizeof text, "%.1f s", seconds);
  } else {
    const auto whole = static_cast<long long>(std::floor(seconds));
    std::snprintf(text, sizeof text, "%lldm %02llds", whole / 60, whole % 60);
  }
  return text;
}

std::string duration_text(std::chrono::nanoseconds d) {
  return duration_text(std::chrono::duration<double>(d).count());
}

}  // namespace poolscope
