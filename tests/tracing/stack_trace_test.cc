#include "poolscope/tracing/stack_trace.h"

#include <gtest/gtest.h>

#include "no_debug_info.h"

// Whether this file was compiled with debug information (the build type's
// flags say so; tests/CMakeLists.txt passes it on).
#ifndef POOLSCOPE_TEST_DEBUG_INFO
#error "POOLSCOPE_TEST_DEBUG_INFO must be defined by the build"
#endif

namespace poolscope::tracing {
namespace {

[[gnu::noinline]] StackTrace capture_in_helper() {
  StackTrace trace = StackTrace::capture();
  asm volatile("" ::: "memory");  // keep the frame
  return trace;
}

TEST(StackTraceTest, NamesFramesByFileFunctionAndLineOrBySymbol) {
  const StackTrace trace = capture_in_helper();
  ASSERT_FALSE(trace.empty());
  const std::vector<StackFrame> frames = trace.symbolize();
  ASSERT_FALSE(frames.empty());
  if (POOLSCOPE_TEST_DEBUG_INFO) {
    // The file named as a site is: its last two path components.
    EXPECT_EQ(frames[0].format().rfind("tracing/stack_trace_test.cc:capture_in_helper():", 0), 0u)
        << frames[0].format();
    EXPECT_TRUE(frames[0].has_line());
  } else {
    // A Release build: the symbol table names the function, with the offset
    // of the return address in it.
    EXPECT_EQ(frames[0].format().rfind("tracing::capture_in_helper()+0x", 0), 0u)
        << frames[0].format();
    EXPECT_FALSE(frames[0].has_line());
  }
  bool saw_test_body = false;
  for (const StackFrame& f : frames) {
    saw_test_body |=
        f.format().find(POOLSCOPE_TEST_DEBUG_INFO ? ":TestBody():" : "::TestBody()+0x") !=
        std::string::npos;
  }
  EXPECT_TRUE(saw_test_body);
}

TEST(StackTraceTest, NamesAFrameWithoutDebugInfoFromTheSymbolTable) {
  const StackTrace trace = nodebug::capture();
  const std::vector<StackFrame> frames = trace.symbolize();
  ASSERT_FALSE(frames.empty());
  // Not "0x55f890dcb50b (no debug info)": the function, demangled, its
  // namespace (no file to tell it apart), and the offset in it.
  EXPECT_EQ(frames[0].format().rfind("nodebug::capture()+0x", 0), 0u) << frames[0].format();
  EXPECT_FALSE(frames[0].has_line());
  EXPECT_GT(frames[0].offset, 0u);
  EXPECT_NE(frames[0].object.find("tracing_tests"), std::string::npos) << frames[0].object;
}

TEST(StackTraceTest, AFrameNoSymbolNamesIsItsObjectAndOffset) {
  StackFrame f;
  f.pc = 0x7f0012345678;
  f.object = "/usr/lib/libapp.so";
  f.object_offset = 0x1234;
  EXPECT_EQ(f.format(), "libapp.so+0x1234");
  f.object.clear();
  EXPECT_EQ(f.format(), "0x7f0012345678");
}

TEST(StackTraceTest, AFrameFromTheSymbolTableKeepsItsClassAndDropsAnonymousNamespaces) {
  StackFrame f;
  f.function = "app::(anonymous namespace)::Settings::load(int, std::map<int, int> const&) const";
  f.offset = 0x1c;
  EXPECT_EQ(f.format(), "Settings::load()+0x1c");
  f.function = "void app::render<std::pair<int, int> >(Widget&)";
  EXPECT_EQ(f.format(), "app::render<std::pair<int, int> >()+0x1c");
  f.function = "app::Key::operator()(int) const";
  EXPECT_EQ(f.format(), "Key::operator()()+0x1c");
  f.function = "main";
  EXPECT_EQ(f.format(), "main()+0x1c");
  f.function = "evil\nname";
  EXPECT_EQ(f.format().find('\n'), std::string::npos) << f.format();
}

TEST(StackTraceTest, FromFramesRoundTrips) {
  const StackTrace trace = capture_in_helper();
  const StackTrace copy = StackTrace::from_frames(trace.frames());
  ASSERT_EQ(copy.frames().size(), trace.frames().size());
  EXPECT_TRUE(std::equal(copy.frames().begin(), copy.frames().end(), trace.frames().begin()));
}

}  // namespace
}  // namespace poolscope::tracing
