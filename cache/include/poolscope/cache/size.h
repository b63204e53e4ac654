// approximate_bytes(): what a cache entry's key and value take in memory,
// for CacheStats::approximate_bytes. Overload it (found by argument-dependent
// lookup) for your own types; the fallback is sizeof.

#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace poolscope::cache {

template <class T>
std::size_t approximate_bytes(const T&) noexcept {
  return sizeof(T);
}

inline std::size_t approximate_bytes(const std::string& s) noexcept {
  return sizeof(s) + (s.capacity() > 15 ? s.capacity() + 1 : 0);
}

template <class A, class B>
std::size_t approximate_bytes(const std::pair<A, B>& p) noexcept;

template <class T>
std::size_t approximate_bytes(const std::vector<T>& v) noexcept {
  std::size_t n = sizeof(v) + (v.capacity() - v.size()) * sizeof(T);
  for (const T& item : v) n += approximate_bytes(item);
  return n;
}

template <class K, class V, class... Rest>
std::size_t approximate_bytes(const std::map<K, V, Rest...>& m) noexcept {
  std::size_t n = sizeof(m);
  for (const auto& item : m) n += approximate_bytes(item) + 4 * sizeof(void*);
  return n;
}

template <class K, class V, class... Rest>
std::size_t approximate_bytes(const std::unordered_map<K, V, Rest...>& m) noexcept {
  std::size_t n = sizeof(m) + m.bucket_count() * sizeof(void*);
  for (const auto& item : m) n += approximate_bytes(item) + 2 * sizeof(void*);
  return n;
}

template <class T>
std::size_t approximate_bytes(const std::shared_ptr<T>& p) noexcept {
  return sizeof(p) + (p ? approximate_bytes(*p) + 2 * sizeof(long) : 0);
}

template <class T>
std::size_t approximate_bytes(const std::optional<T>& o) noexcept {
  return o ? approximate_bytes(*o) + (sizeof(o) - sizeof(T)) : sizeof(o);
}

template <class A, class B>
std::size_t approximate_bytes(const std::pair<A, B>& p) noexcept {
  return approximate_bytes(p.first) + approximate_bytes(p.second);
}

}  // namespace poolscope::cache
