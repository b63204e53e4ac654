// A fast, well-mixed 64-bit hash of a byte string for the caches' shard and
// bucket choice: wyhash's construction (16 bytes per step folded in with one
// 64x64->128-bit multiply, the last 16 read as two overlapping 8-byte words,
// so every load has a fixed size and nothing calls memcpy). A 30-byte key
// costs two multiplies and about 25 instructions; a TtlCache hit hashes its
// key once (the hash picks both the shard and the bucket). Not for untrusted
// input that could be chosen to collide.
//
// CacheHash<K>: what the caches hash keys with. std::hash, except for
// std::string, which gets hash_bytes() and is transparent, so a
// std::string-keyed cache can be searched with a std::string_view.

#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>

namespace poolscope::cache {
namespace detail {

__extension__ typedef unsigned __int128 Uint128;  // one 64x64->128 multiply

// The two halves of a*b folded together.
inline std::uint64_t mum(std::uint64_t a, std::uint64_t b) noexcept {
  const Uint128 r = static_cast<Uint128>(a) * b;
  return static_cast<std::uint64_t>(r) ^ static_cast<std::uint64_t>(r >> 64);
}

inline std::uint64_t load64(const char* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

inline std::uint64_t load32(const char* p) noexcept {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

inline constexpr std::uint64_t kSecret0 = 0xa0761d6478bd642full;
inline constexpr std::uint64_t kSecret1 = 0xe7037ed1a0b428dbull;
inline constexpr std::uint64_t kSeed = 0x8ebc6af09c88c6e3ull;

}  // namespace detail

[[gnu::always_inline]] inline std::uint64_t hash_bytes(std::string_view s) noexcept {
  using detail::load32;
  using detail::load64;
  const char* p = s.data();
  const std::size_t n = s.size();
  std::uint64_t seed = detail::kSeed;
  std::uint64_t a = 0, b = 0;
  if (n <= 16) {
    if (n >= 4) {
      // Two overlapping pairs of 4-byte words cover 4..16 bytes.
      const std::size_t mid = (n >> 3) << 2;
      a = load32(p) << 32 | load32(p + mid);
      b = load32(p + n - 4) << 32 | load32(p + n - 4 - mid);
    } else if (n > 0) {
      const auto byte = [p](std::size_t i) {
        return static_cast<std::uint64_t>(static_cast<unsigned char>(p[i]));
      };
      a = byte(0) << 16 | byte(n >> 1) << 8 | byte(n - 1);
    }
  } else {
    std::size_t left = n;
    for (; left > 16; left -= 16, p += 16) {
      seed = detail::mum(load64(p) ^ detail::kSecret1, load64(p + 8) ^ seed);
    }
    a = load64(p + left - 16);
    b = load64(p + left - 8);
  }
  const detail::Uint128 r = static_cast<detail::Uint128>(a ^ detail::kSecret1) * (b ^ seed);
  return detail::mum(static_cast<std::uint64_t>(r) ^ detail::kSecret0 ^ n,
                     static_cast<std::uint64_t>(r >> 64) ^ detail::kSecret1);
}

// a == b, inline and without branches for keys of 8 to 32 bytes: the first
// and last 16 bytes (or 8) compared as overlapping 8-byte words. A cache hit
// compares its key once, and a call to memcmp costs as much as comparing a
// short key.
inline bool equal_bytes(std::string_view a, std::string_view b) noexcept {
  using detail::load32;
  using detail::load64;
  const std::size_t n = a.size();
  if (n != b.size()) return false;
  const char* p = a.data();
  const char* q = b.data();
  const auto differ = [p, q](std::size_t i) { return load64(p + i) ^ load64(q + i); };
  if (n >= 16) {
    for (std::size_t i = 0; i + 32 < n; i += 16) {
      if ((differ(i) | differ(i + 8)) != 0) return false;
    }
    const std::size_t tail = n > 32 ? n - 32 : 0;  // the last 32 (or all of n)
    const std::size_t mid = n > 32 ? tail + 16 : n - 16;
    return (differ(tail) | differ(tail + 8) | differ(mid) | differ(n - 8)) == 0;
  }
  if (n >= 8) return (differ(0) | differ(n - 8)) == 0;
  if (n >= 4) return load32(p) == load32(q) && load32(p + n - 4) == load32(q + n - 4);
  for (std::size_t i = 0; i < n; ++i) {
    if (p[i] != q[i]) return false;
  }
  return true;
}

template <class K>
struct CacheHash : std::hash<K> {};

template <>
struct CacheHash<std::string> {
  using is_transparent = void;
  [[gnu::always_inline]] std::size_t operator()(std::string_view s) const noexcept {
    return hash_bytes(s);
  }
};

}  // namespace poolscope::cache
