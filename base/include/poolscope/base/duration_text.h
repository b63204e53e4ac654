// Durations as a person reads them in a log line or a table: "850 ns",
// "12.3 us", "4.6 ms", "1.5 s", "2m 05s". Every poolscope message and
// report prints durations this way.

#pragma once

#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>

namespace poolscope {

// The same for a duration in seconds (as the figures in reports carry them).
inline std::string duration_text(double seconds) {
  if (std::isnan(seconds)) return "nan";
  if (seconds < 0) {
    // Not "-" + text: GCC 12 at -O3 reports a false -Wrestrict for it.
    std::string text = duration_text(-seconds);
    text.insert(text.begin(), '-');
    return text;
  }
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
  } else if (seconds < 9e15) {
    const auto whole = static_cast<long long>(std::floor(seconds));
    std::snprintf(text, sizeof text, "%lldm %02llds", whole / 60, whole % 60);
  } else {
    return "forever";
  }
  return text;
}

// d in the largest unit under which it is at least 1 (nanoseconds up to
// minutes), with one decimal from microseconds to seconds. Negative
// durations print with a minus sign.
inline std::string duration_text(std::chrono::nanoseconds d) {
  return duration_text(std::chrono::duration<double>(d).count());
}

}  // namespace poolscope
