#include "poolscope/tracing/stack_trace.h"

#include <gtest/gtest.h>

namespace poolscope::tracing {
namespace {

[[gnu::noinline]] StackTrace capture_in_helper() {
  StackTrace trace = StackTrace::capture();
  asm volatile("" ::: "memory");  // keep the frame
  return trace;
}

TEST(StackTraceTest, SymbolizesFileFunctionAndLine) {
  const StackTrace trace = capture_in_helper();
  ASSERT_FALSE(trace.empty());
  const std::vector<StackFrame> frames = trace.symbolize();
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames[0].format().rfind("stack_trace_test.cc:capture_in_helper():", 0), 0u)
      << frames[0].format();
  bool saw_test_body = false;
  for (const StackFrame& f : frames)
    saw_test_body |= f.format().find(":TestBody():") != std::string::npos;
  EXPECT_TRUE(saw_test_body);
}

TEST(StackTraceTest, FromFramesRoundTrips) {
  const StackTrace trace = capture_in_helper();
  const StackTrace copy = StackTrace::from_frames(trace.frames());
  ASSERT_EQ(copy.frames().size(), trace.frames().size());
  EXPECT_TRUE(std::equal(copy.frames().begin(), copy.frames().end(), trace.frames().begin()));
}

}  // namespace
}  // namespace poolscope::tracing
