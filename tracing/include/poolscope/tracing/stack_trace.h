// StackTrace: the return addresses of a thread's stack, captured cheaply
// (no symbol lookup) and turned into "file:function():line" frames only when
// printed, from the binary's debug information.
//
// A StackTrace is a value: copying and reading it from many threads is safe.
// capture() and symbolize() are thread-safe.

#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "poolscope/base/source_location.h"

namespace poolscope::tracing {

// One symbolized frame. Fields the debug information lacks are empty / 0.
struct StackFrame {
  std::uintptr_t pc = 0;
  std::string file;      // as recorded in the debug info (may be a full path)
  std::string function;  // demangled
  int line = 0;

  // "settings.cc:Load():237", or "0x55d2c3a1b2c4 (no debug info)".
  std::string format() const;
};

class StackTrace {
 public:
  static constexpr std::size_t kMaxFrames = 32;

  StackTrace() = default;

  // Captures the calling thread's stack, innermost first, skipping this
  // function. Costs about a microsecond; allocates nothing.
  static StackTrace capture() noexcept;

  // Rebuilds a trace from saved addresses (at most kMaxFrames).
  static StackTrace from_frames(std::span<const std::uintptr_t> frames) noexcept;

  std::span<const std::uintptr_t> frames() const noexcept { return {frames_.data(), size_}; }
  bool empty() const noexcept { return size_ == 0; }

  // Symbolizes every frame (inlined calls expand to several frames).
  std::vector<StackFrame> symbolize() const;

  // The callers of `site`: the frames above the one that called acquire() at
  // site, formatted, at most `depth` of them. Frames inside poolscope and the
  // site's own frame are left out.
  std::vector<std::string> callers_of(const poolscope::source_location& site,
                                      std::size_t depth) const;

 private:
  std::array<std::uintptr_t, kMaxFrames> frames_{};
  std::size_t size_ = 0;
};

}  // namespace poolscope::tracing
