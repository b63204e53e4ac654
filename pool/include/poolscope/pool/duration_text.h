// Durations as a person reads them in a log line or a table: "850 ns",
// "12.3 us", "4.6 ms", "1.5 s", "2m 05s". Every poolscope message and
// report prints durations this way.

#pragma once

#include <chrono>
#include <string>

namespace poolscope {

// d in the largest unit under which it is at least 1 (nanoseconds up to
// minutes), with one decimal from microseconds to seconds. Negative
// durations print with a minus sign.
std::string duration_text(std::chrono::nanoseconds d);

// The same for a duration in seconds (as the figures in reports carry them).
std::string duration_text(double seconds);

}  // namespace poolscope
