// Glob patterns for cache invalidation, as the incidents' invalidate_pattern
// used them: '*' matches any run of characters (also none), '?' exactly one,
// '\' makes the next character literal; every other character, including
// '[', ']', '.', '+', '(' and '^', matches only itself.
//
// Matching takes time linear in the text, whatever the pattern: a pattern is
// compiled once into a position automaton simulated one bit per position
// (Shift-And), so a match costs one shift, and, or per 64 positions of the
// pattern per character of text, with no backtracking. Patterns that are a
// plain key or a literal prefix and '*' compare as strings.
//
// GlobPattern is immutable after construction: safe to share between threads.

#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace poolscope::cache {

class GlobPattern {
 public:
  // Throws std::bad_alloc only.
  explicit GlobPattern(std::string_view pattern);

  // True when the whole of text matches. Throws std::bad_alloc only, and
  // only for patterns of over 2,047 items.
  bool matches(std::string_view text) const;

  // What every matching text starts with (the pattern's literal prefix
  // before its first wildcard, escapes resolved).
  std::string_view literal_prefix() const noexcept { return prefix_; }

 private:
  enum class Kind { kExact, kPrefix, kAutomaton };
  bool run(std::string_view text) const;

  Kind kind_ = Kind::kExact;
  std::string prefix_;  // kExact: the whole text; else the literal prefix
  // kAutomaton: state j = the first j pattern items (characters or '?')
  // matched; words_ 64-bit words per set of states.
  std::size_t words_ = 0;
  std::size_t accept_state_ = 0;      // all items matched
  std::vector<std::uint64_t> next_;   // 256 sets: states j+1 whose item j takes that byte
  std::vector<std::uint64_t> loops_;  // states with a '*' after them: they stay on any byte
};

// True when text matches pattern (compiles it: for many texts, use one GlobPattern).
bool glob_match(std::string_view pattern, std::string_view text);

// The literal prefix of pattern before its first wildcard or escape
// ("user:*:x" -> "user:"): keys without it cannot match.
std::string_view glob_literal_prefix(std::string_view pattern) noexcept;

}  // namespace poolscope::cache
