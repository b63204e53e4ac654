// Invalidation<K>: one invalidation of a TtlCache (a key, a key prefix, a
// glob pattern, or everything), as an invalidation listener sees it and
// TtlCache::apply() replays it: the unit an invalidation bus carries between
// caches and processes.
//
// A plain value type.

#pragma once

#include <optional>
#include <string>

namespace poolscope::cache {

template <class K>
struct Invalidation {
  enum class Kind { kKey, kPrefix, kGlob, kAll };
  Kind kind = Kind::kAll;
  std::optional<K> key;  // kKey
  std::string pattern;   // kPrefix, kGlob
};

}  // namespace poolscope::cache
