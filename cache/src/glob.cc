#include "poolscope/cache/glob.h"

namespace poolscope::cache {
namespace {

// One item of a pattern: a byte, any byte ('?'), or a run of anything ('*').
struct Item {
  enum class Kind { kByte, kAny, kStar } kind;
  unsigned char byte = 0;
};

template <class F>
void for_each_item(std::string_view pattern, F&& f) {
  for (std::size_t p = 0; p < pattern.size(); ++p) {
    const char c = pattern[p];
    if (c == '*') {
      f(Item{Item::Kind::kStar});
    } else if (c == '?') {
      f(Item{Item::Kind::kAny});
    } else {
      // A '\' escapes the next character; a trailing one is itself.
      const bool escaped = c == '\\' && p + 1 < pattern.size();
      f(Item{Item::Kind::kByte, static_cast<unsigned char>(escaped ? pattern[++p] : c)});
    }
  }
}

void set_bit(std::vector<std::uint64_t>& bits, std::size_t offset, std::size_t i) {
  bits[offset + i / 64] |= std::uint64_t{1} << (i % 64);
}

}  // namespace

GlobPattern::GlobPattern(std::string_view pattern) {
  std::size_t items = 0, stars = 0;
  bool wildcard_seen = false, any_after_star = false;
  for_each_item(pattern, [&](const Item& item) {
    if (item.kind == Item::Kind::kStar) {
      ++stars;
      wildcard_seen = true;
      return;
    }
    ++items;
    if (stars > 0) any_after_star = true;
    if (item.kind == Item::Kind::kAny) wildcard_seen = true;
    if (!wildcard_seen) prefix_ += static_cast<char>(item.byte);
  });
  if (!wildcard_seen) return;  // kExact
  if (!any_after_star && items == prefix_.size()) {
    kind_ = Kind::kPrefix;  // "literal*", "literal**"
    return;
  }
  kind_ = Kind::kAutomaton;
  accept_state_ = items;
  words_ = (items + 1 + 63) / 64;
  next_.assign(256 * words_, 0);
  loops_.assign(words_, 0);
  std::size_t state = 0;
  for_each_item(pattern, [&](const Item& item) {
    switch (item.kind) {
      case Item::Kind::kStar:
        set_bit(loops_, 0, state);
        return;
      case Item::Kind::kAny:
        for (std::size_t c = 0; c < 256; ++c) set_bit(next_, c * words_, state + 1);
        break;
      case Item::Kind::kByte:
        set_bit(next_, item.byte * words_, state + 1);
        break;
    }
    ++state;
  });
}

bool GlobPattern::matches(std::string_view text) const {
  switch (kind_) {
    case Kind::kExact:
      return text == prefix_;
    case Kind::kPrefix:
      return text.starts_with(prefix_);
    case Kind::kAutomaton:
      return text.starts_with(prefix_) && run(text);
  }
  return false;
}

bool GlobPattern::run(std::string_view text) const {
  const auto byte = [](char c) { return static_cast<std::size_t>(static_cast<unsigned char>(c)); };
  if (words_ == 1) {
    std::uint64_t states = 1;  // nothing matched yet
    for (const char c : text) {
      states = ((states << 1) & next_[byte(c)]) | (states & loops_[0]);
      if (states == 0) return false;
    }
    return (states >> accept_state_) & 1;
  }
  // The same, over words_ words (bit j of the set is bit j % 64 of word j / 64).
  constexpr std::size_t kOnStack = 32;  // patterns of up to 2,047 items
  std::uint64_t stack[kOnStack] = {};
  std::vector<std::uint64_t> heap(words_ > kOnStack ? words_ : 0, 0);
  std::uint64_t* const states = words_ > kOnStack ? heap.data() : stack;
  states[0] = 1;
  for (const char c : text) {
    const std::uint64_t* next = &next_[byte(c) * words_];
    std::uint64_t carry = 0, any = 0;
    for (std::size_t w = 0; w < words_; ++w) {
      const std::uint64_t s = states[w];
      states[w] = (((s << 1) | carry) & next[w]) | (s & loops_[w]);
      carry = s >> 63;
      any |= states[w];
    }
    if (any == 0) return false;
  }
  return (states[accept_state_ / 64] >> (accept_state_ % 64)) & 1;
}

bool glob_match(std::string_view pattern, std::string_view text) {
  return GlobPattern(pattern).matches(text);
}

std::string_view glob_literal_prefix(std::string_view pattern) noexcept {
  const std::size_t wildcard = pattern.find_first_of("*?\\");
  return pattern.substr(0, wildcard);
}

}  // namespace poolscope::cache
