// StackTrace: the return addresses of a thread's stack, captured cheaply
// (no symbol lookup) and named only when printed: "file:function():line"
// from the binary's debug information (DWARF) where it has some, else
// "function()+0x1c" from its symbol table, else "object+0x1234" (which
// `addr2line -e object 0x1234` resolves against a debug build).
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

// One frame, as much of it as the binary tells. Fields it lacks are empty / 0.
struct StackFrame {
  std::uintptr_t pc = 0;
  std::string file;                  // from the debug information (may be a full path)
  std::string function;              // demangled, from the debug information or the symbol table
  int line = 0;                      // from the debug information
  std::uintptr_t offset = 0;         // pc - the function's start, when named from the symbol table
  std::string object;                // the executable or shared object holding pc
  std::uintptr_t object_offset = 0;  // pc - the object's load address

  // True when the debug information gave the file and line.
  bool has_line() const noexcept { return line > 0 && !file.empty(); }

  // "api/settings.cc:Load():237" (the file named as a site's is, see
  // poolscope/base/site.h); without debug information "Settings::Load()+0x1c";
  // without a symbol "libapp.so+0x1234" (or "0x7f..." when even the object is
  // unknown). Control characters escaped.
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

  // Names every frame (with debug information, inlined calls expand to
  // several frames).
  std::vector<StackFrame> symbolize() const;

  // The callers of `site`: the frames above the one that called acquire() at
  // site, at most `depth` of them. Frames inside poolscope and the site's
  // own frame are left out. The site's frame is found by its file and line,
  // or without debug information by its function's name; when neither is
  // on the stack (inlined, or a tail call), the first frame outside
  // poolscope is taken as the first caller.
  std::vector<StackFrame> callers_of(const poolscope::source_location& site,
                                     std::size_t depth) const;

 private:
  std::array<std::uintptr_t, kMaxFrames> frames_{};
  std::size_t size_ = 0;
};

}  // namespace poolscope::tracing
