#include "poolscope/base/duration_text.h"

#include <gtest/gtest.h>

namespace poolscope {
namespace {

using namespace std::chrono_literals;

TEST(DurationTextTest, PicksTheLargestUnitThatIsAtLeastOne) {
  EXPECT_EQ(duration_text(850ns), "850 ns");
  EXPECT_EQ(duration_text(12'340ns), "12.3 us");
  EXPECT_EQ(duration_text(100ms), "100.0 ms");
  EXPECT_EQ(duration_text(1500ms), "1.5 s");
  EXPECT_EQ(duration_text(125s), "2m 05s");
  EXPECT_EQ(duration_text(30min), "30m 00s");
}

TEST(DurationTextTest, ReadsSecondsAsTheReportsCarryThem) {
  EXPECT_EQ(duration_text(0.0), "0 ns");
  EXPECT_EQ(duration_text(2.5e-4), "250.0 us");
  EXPECT_EQ(duration_text(-0.002), "-2.0 ms");
}

}  // namespace
}  // namespace poolscope
