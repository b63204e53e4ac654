// Capture with glibc's backtrace() (the unwinder, no symbols); symbolization
// with GCC's libbacktrace, which reads DWARF line tables in process.

#include "poolscope/tracing/stack_trace.h"

#include <cxxabi.h>
#include <execinfo.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "poolscope/base/site.h"

#if POOLSCOPE_HAVE_LIBBACKTRACE
#include <backtrace.h>
#endif

namespace poolscope::tracing {
namespace {

std::string demangle(const char* name) {
  if (name == nullptr) return {};
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> out(
      abi::__cxa_demangle(name, nullptr, nullptr, &status), &std::free);
  return status == 0 && out != nullptr ? std::string(out.get()) : std::string(name);
}

#if POOLSCOPE_HAVE_LIBBACKTRACE
backtrace_state* state() {
  // One state per process, as libbacktrace requires; threaded = 1.
  static backtrace_state* s = backtrace_create_state(nullptr, 1, nullptr, nullptr);
  return s;
}

int on_frame(void* data, std::uintptr_t pc, const char* file, int line, const char* function) {
  auto* frames = static_cast<std::vector<StackFrame>*>(data);
  frames->push_back({pc, file != nullptr ? file : "", demangle(function), line});
  return 0;
}

void on_error(void*, const char*, int) {}
#endif

// Frames of the pool and the tracer themselves, between capture and the site.
bool is_poolscope_frame(const StackFrame& f) {
  for (std::string_view prefix :
       {"poolscope::Pool::", "poolscope::detail::", "poolscope::tracing::"}) {
    if (f.function.starts_with(prefix)) return true;
  }
  return false;
}

}  // namespace

std::string StackFrame::format() const {
  if (file.empty() && function.empty()) {
    char text[64];
    std::snprintf(text, sizeof text, "0x%zx (no debug info)", static_cast<std::size_t>(pc));
    return text;
  }
  std::string out(file.empty() ? std::string_view("?") : short_file_name(file));
  out += ':';
  out += function.empty() ? std::string("?()") : short_function_name(function);
  out += ':';
  out += std::to_string(line);
  return out;
}

// Not inlined, so __builtin_return_address(0) is the address in the caller
// where the trace starts; whatever lies below it (this function, a
// sanitizer's interceptor around backtrace()) is dropped.
[[gnu::noinline]] StackTrace StackTrace::capture() noexcept {
  void* const caller = __builtin_return_address(0);
  StackTrace trace;
  void* frames[kMaxFrames + 4];
  const int n = ::backtrace(frames, static_cast<int>(kMaxFrames + 4));
  int first = 0;
  while (first < n && frames[first] != caller) ++first;
  if (first == n) first = 1;  // not found: drop this function's own frame
  for (int i = first; i < n && trace.size_ < kMaxFrames; ++i) {
    trace.frames_[trace.size_++] = reinterpret_cast<std::uintptr_t>(frames[i]);
  }
  return trace;
}

StackTrace StackTrace::from_frames(std::span<const std::uintptr_t> frames) noexcept {
  StackTrace trace;
  trace.size_ = std::min(frames.size(), kMaxFrames);
  std::copy_n(frames.begin(), trace.size_, trace.frames_.begin());
  return trace;
}

std::vector<StackFrame> StackTrace::symbolize() const {
  std::vector<StackFrame> out;
  for (std::uintptr_t pc : frames()) {
    const std::size_t before = out.size();
#if POOLSCOPE_HAVE_LIBBACKTRACE
    // pc is a return address: pc - 1 lies inside the call instruction.
    if (state() != nullptr) backtrace_pcinfo(state(), pc - 1, on_frame, on_error, &out);
#endif
    if (out.size() == before) out.push_back({pc, "", "", 0});
  }
  return out;
}

std::vector<std::string> StackTrace::callers_of(const poolscope::source_location& site,
                                                std::size_t depth) const {
  const std::vector<StackFrame> frames = symbolize();
  const std::string_view site_file = short_file_name(site.file_name());
  // The site's frame: the call on the site's file and line. Without debug
  // information fall back to the first frame outside poolscope.
  std::size_t first = frames.size();
  for (std::size_t i = 0; i < frames.size(); ++i) {
    if (frames[i].line == static_cast<int>(site.line()) &&
        short_file_name(frames[i].file) == site_file) {
      first = i + 1;
      break;
    }
  }
  if (first == frames.size()) {
    std::size_t i = 0;
    while (i < frames.size() && is_poolscope_frame(frames[i])) ++i;
    first = std::min(i + 1, frames.size());
  }
  std::vector<std::string> out;
  for (std::size_t i = first; i < frames.size() && out.size() < depth; ++i) {
    if (frames[i].function.starts_with("__libc_start") || frames[i].function == "_start") break;
    out.push_back(frames[i].format());
  }
  return out;
}

}  // namespace poolscope::tracing
