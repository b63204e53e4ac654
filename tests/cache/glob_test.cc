// Glob patterns: what they match, and what matching costs.

#include "poolscope/cache/glob.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace poolscope::cache {
namespace {

// The definition, written as plainly as it can be: exponential in the
// worst case, for checking short inputs against.
bool reference_match(std::string_view p, std::string_view t) {
  if (p.empty()) return t.empty();
  if (p[0] == '*') {
    for (std::size_t skip = 0; skip <= t.size(); ++skip) {
      if (reference_match(p.substr(1), t.substr(skip))) return true;
    }
    return false;
  }
  if (t.empty()) return false;
  if (p[0] == '?') return reference_match(p.substr(1), t.substr(1));
  const bool escaped = p[0] == '\\' && p.size() > 1;
  const char literal = escaped ? p[1] : p[0];
  return literal == t[0] && reference_match(p.substr(escaped ? 2 : 1), t.substr(1));
}

TEST(GlobTest, MatchesLikeTheIncidentsInvalidatePattern) {
  EXPECT_TRUE(glob_match("", ""));
  EXPECT_FALSE(glob_match("", "a"));
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_TRUE(glob_match("a*b*c", "axxbyyc"));
  EXPECT_FALSE(glob_match("a*b*c", "axxbyy"));
  EXPECT_TRUE(glob_match("*aab", "aaaab"));
  EXPECT_TRUE(glob_match("??", "ab"));
  EXPECT_FALSE(glob_match("??", "abc"));
  EXPECT_TRUE(glob_match("a\\?", "a?"));
  EXPECT_FALSE(glob_match("a\\?", "ab"));
  EXPECT_TRUE(glob_match("end\\", "end\\"));
  EXPECT_EQ(glob_literal_prefix("user:*:x"), "user:");
  EXPECT_EQ(glob_literal_prefix("plain"), "plain");
  EXPECT_EQ(GlobPattern("us\\*er:*").literal_prefix(), "us*er:") << "escapes resolved";
}

TEST(GlobTest, AgreesWithTheDefinitionOnEveryShortPatternAndText) {
  // Random patterns and texts over an alphabet that makes wildcards,
  // escapes and near misses common.
  std::mt19937 rng(12);
  const std::string pattern_chars = "ab*?\\";
  const std::string text_chars = "ab*?\\";
  auto random_string = [&](const std::string& chars, std::size_t max_length) {
    std::string s(rng() % (max_length + 1), ' ');
    for (char& c : s) c = chars[rng() % chars.size()];
    return s;
  };
  for (int i = 0; i < 20000; ++i) {
    const std::string pattern = random_string(pattern_chars, 8);
    const GlobPattern compiled(pattern);
    for (int j = 0; j < 5; ++j) {
      const std::string text = random_string(text_chars, 10);
      ASSERT_EQ(compiled.matches(text), reference_match(pattern, text))
          << "pattern '" << pattern << "' text '" << text << "'";
    }
  }
}

TEST(GlobTest, PatternsLongerThanOneMachineWordMatch) {
  // 200 items: the automaton spans four 64-bit words, and a carry crosses each.
  std::string pattern;
  std::string text;
  for (int i = 0; i < 100; ++i) {
    pattern += "?x";
    text += "yx";
  }
  EXPECT_TRUE(GlobPattern(pattern).matches(text));
  EXPECT_FALSE(GlobPattern(pattern).matches(text + "x"));
  EXPECT_TRUE(GlobPattern("*" + pattern + "*").matches("zz" + text + "zz"));
  EXPECT_FALSE(GlobPattern(pattern + "z").matches(text));
  std::string long_star(3000, 'a');
  long_star[1500] = '*';  // 2,999 items: past the words kept on the stack
  EXPECT_TRUE(
      GlobPattern(long_star).matches(std::string(1500, 'a') + "bbb" + std::string(1499, 'a')));
  EXPECT_FALSE(GlobPattern(long_star).matches(std::string(2998, 'a')));
}

// Seconds per call of f, the best of a few rounds (the least disturbed by
// whatever else the machine runs).
template <class F>
double best_seconds(int calls, F f) {
  double best = 1e9;
  for (int round = 0; round < 5; ++round) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; ++i) f();
    best = std::min(
        best,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / calls);
  }
  return best;
}

TEST(GlobTest, APathologicalPatternCostsNoMoreThanAPlainOneOfTheSameLength) {
  // Backtracking at every '*' makes "*aaa...ab*7" against a key of 256 a's
  // and digits quadratic (the 39 s invalidation of issue 11); the automaton
  // reads each character of the key once whatever the pattern.
  const std::string key = std::string(240, 'a') + "0000000000001237";
  const std::string pathological = "*" + std::string(100, 'a') + "b*7";
  const std::string plain = "*" + std::string(100, 'c') + "b*7";
  bool sink = false;
  const double slow = best_seconds(2000, [&] { sink ^= glob_match(pathological, key); });
  const double fast = best_seconds(2000, [&] { sink ^= glob_match(plain, key); });
  EXPECT_FALSE(sink);
  EXPECT_LT(slow, 3 * fast) << "pathological " << slow * 1e9 << " ns, plain " << fast * 1e9
                            << " ns per match";
}

}  // namespace
}  // namespace poolscope::cache
