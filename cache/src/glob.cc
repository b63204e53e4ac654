#include "poolscope/cache/glob.h"

namespace poolscope::cache {

bool glob_match(std::string_view pattern, std::string_view text) noexcept {
  std::size_t p = 0, t = 0;
  std::size_t star = std::string_view::npos;  // pattern index after the last '*'
  std::size_t star_text = 0;                  // text index that '*' is matched up to
  while (t < text.size()) {
    if (p < pattern.size()) {
      const char c = pattern[p];
      if (c == '*') {
        star = ++p;
        star_text = t;
        continue;
      }
      if (c == '?') {
        ++p;
        ++t;
        continue;
      }
      const bool escaped = c == '\\' && p + 1 < pattern.size();
      const char literal = escaped ? pattern[p + 1] : c;
      if (literal == text[t]) {
        p += escaped ? 2 : 1;
        ++t;
        continue;
      }
    }
    if (star == std::string_view::npos) return false;
    // Let the last '*' swallow one more character and retry from there.
    p = star;
    t = ++star_text;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

std::string_view glob_literal_prefix(std::string_view pattern) noexcept {
  const std::size_t wildcard = pattern.find_first_of("*?\\");
  return pattern.substr(0, wildcard);
}

}  // namespace poolscope::cache
