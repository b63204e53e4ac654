// poolscope::source_location: std::source_location where the compiler
// provides it, else a stand-in with the same interface built on the
// __builtin_FILE() family (clang before 15 with libstdc++ has the header but
// not std::source_location). Every acquire() takes one as its last,
// defaulted parameter; code that names the type should name this one.
//
// A plain value: safe to copy and share between threads.

#pragma once

#include <cstdint>
#include <version>

#if defined(__cpp_lib_source_location)
#include <source_location>
#endif

namespace poolscope {

#if defined(__cpp_lib_source_location)

using source_location = std::source_location;

#else

class source_location {
 public:
  static constexpr source_location current(const char* file = __builtin_FILE(),
                                           const char* function = __builtin_FUNCTION(),
                                           std::uint_least32_t line = __builtin_LINE()) noexcept {
    source_location loc;
    loc.file_ = file;
    loc.function_ = function;
    loc.line_ = line;
    return loc;
  }

  constexpr source_location() noexcept = default;
  constexpr const char* file_name() const noexcept { return file_; }
  constexpr const char* function_name() const noexcept { return function_; }
  constexpr std::uint_least32_t line() const noexcept { return line_; }
  constexpr std::uint_least32_t column() const noexcept { return 0; }

 private:
  const char* file_ = "";
  const char* function_ = "";
  std::uint_least32_t line_ = 0;
};

#endif

// True for a location that names a call site (a default-constructed one,
// as events carry for work the pool does on its own, does not).
constexpr bool has_site(const source_location& loc) noexcept { return loc.line() != 0; }

}  // namespace poolscope
