// Codecs: how values and keys cross the process boundary through Redis.
//
// Built in: std::string (the bytes as they are), integers (decimal), float
// and double (shortest text that reads back to the same value), and the
// settings of one SettingsCache entity. Anything else takes a RedisCodec
// the user supplies: encode() must produce what decode() reads back.
//
// decode() returns nullopt for bytes it cannot read (written by another
// version of the program, say); the tier counts that as a miss and loads
// afresh, overwriting the bad value. A codec that throws is treated the
// same way: decoding never fails a read, and a failed encode only means
// the value is not shared.
//
// Codecs are called concurrently from many threads: they must be
// thread-safe (pure functions are).

#pragma once

#include <charconv>
#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "poolscope/cache/settings_cache.h"

namespace poolscope::cache {

template <class V>
struct RedisCodec {
  std::function<std::string(const V&)> encode{};
  std::function<std::optional<V>(std::string_view)> decode{};
};

// Keys become the last part of {prefix}:{cache}:{key}; the subscriber turns
// an invalidated key's text back into a key with decode().
template <class K>
struct RedisKeyCodec {
  std::function<std::string(const K&)> encode;
  std::function<std::optional<K>(std::string_view)> decode;
};

// Types with a built-in codec (values and keys alike).
template <class T>
concept BuiltinRedisText = std::same_as<T, std::string> ||
                           (std::integral<T> && !std::same_as<T, bool>) || std::floating_point<T>;

namespace detail {

template <class T>
std::string to_text(const T& value) {
  if constexpr (std::same_as<T, std::string>) {
    return value;
  } else {
    char buffer[64];
    const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
    return std::string(buffer, result.ptr);
  }
}

template <class T>
std::optional<T> from_text(std::string_view text) {
  if constexpr (std::same_as<T, std::string>) {
    return std::string(text);
  } else {
    T value{};
    const char* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || ec != std::errc() || ptr != end) return std::nullopt;
    return value;
  }
}

}  // namespace detail

template <BuiltinRedisText V>
RedisCodec<V> builtin_codec() {
  return {&detail::to_text<V>, &detail::from_text<V>};
}

template <BuiltinRedisText K>
RedisKeyCodec<K> builtin_key_codec() {
  return {&detail::to_text<K>, &detail::from_text<K>};
}

// The settings of one entity as bytes: "<count>\n" then, per setting,
// "<key length>:<key><value length>:<value>" (binary-safe, in key order so
// that equal settings encode equally).
std::string encode_settings(const Settings& settings);

// The settings encode_settings() wrote, as entity's settings from table; null
// for bytes that are not exactly such an encoding.
std::shared_ptr<const Settings> decode_settings(std::shared_ptr<const SettingsTable> table,
                                                std::int64_t entity, std::string_view bytes);

}  // namespace poolscope::cache
