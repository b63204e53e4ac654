// Glob patterns for cache invalidation, as the incidents' invalidate_pattern
// used them: '*' matches any run of characters (also none), '?' exactly one,
// '\' makes the next character literal; every other character, including
// '[', ']', '.', '+', '(' and '^', matches only itself.

#pragma once

#include <string_view>

namespace poolscope::cache {

// True when text matches pattern. Linear in practice: one backtrack point.
bool glob_match(std::string_view pattern, std::string_view text) noexcept;

// The literal prefix of pattern before its first wildcard ("user:*:x" ->
// "user:"): keys without it cannot match.
std::string_view glob_literal_prefix(std::string_view pattern) noexcept;

}  // namespace poolscope::cache
