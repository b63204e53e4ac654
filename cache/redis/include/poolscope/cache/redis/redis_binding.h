// RedisBinding<K, V>: a TtlCache with the Redis tier under it, as
// RedisTier::attach() returns it.
//
//   TtlCache<std::string, std::string> configs({.name = "config", .ttl = 5min});
//   RedisBinding shared = tier.attach(configs);
//   std::string c = shared.get_or_load("pair:ETH/USDT", load_config);
//   configs.invalidate_glob("pair:*");   // here, in Redis, and in every process
//
// A read is the local cache, else Redis, else the load lock: of all the
// processes missing a key at once, one runs the loader and stores the value
// in Redis, the others wait for it (see RedisTier). Invalidations of the
// cache (erase, invalidate_prefix, invalidate_glob, clear, from any code
// that holds it) go to Redis and to every process while the binding lives;
// theirs are applied to this cache. put() stays local.
//
// REQUIRES: the cache outlives the binding. Move-only (a moved-from binding
// may only be destroyed or assigned to). The class is thread-safe. No
// concurrent call to any API of this type causes a data race.

#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "poolscope/base/subscription.h"
#include "poolscope/cache/redis/codec.h"
#include "poolscope/cache/redis/detail/binding.h"
#include "poolscope/cache/ttl_cache.h"

namespace poolscope::cache {

// Per cache: the Redis TTL of its values; nullopt: the cache's own TTL.
struct RedisCacheOptions {
  std::optional<std::chrono::milliseconds> ttl{};
};

namespace detail {

// Another process's invalidation as this cache's; a clear of everything
// when it names a key this process cannot read (or a pattern of a cache
// whose keys are not strings): dropping too much is the safe mistake.
template <class K>
Invalidation<K> from_wire(WireKind kind, std::string_view text, const RedisKeyCodec<K>& keys) {
  using Kind = typename Invalidation<K>::Kind;
  switch (kind) {
    case WireKind::kKey:
      try {
        if (std::optional<K> key = keys.decode(text)) return {Kind::kKey, std::move(key), {}};
      } catch (...) {
        // A key codec that throws reads nothing.
      }
      break;
    case WireKind::kPrefix:
      if constexpr (StringKey<K>) return {Kind::kPrefix, std::nullopt, std::string(text)};
      break;
    case WireKind::kGlob:
      if constexpr (StringKey<K>) return {Kind::kGlob, std::nullopt, std::string(text)};
      break;
    case WireKind::kAll:
      break;
  }
  return {Kind::kAll, std::nullopt, {}};
}

// Wires cache's invalidations to the tier both ways until the returned
// Subscription ends: local ones are published, other processes' applied.
template <class K, class V, class H, class E>
std::pair<std::shared_ptr<BindingState>, Subscription> wire(const std::shared_ptr<TierCore>& core,
                                                            TtlCache<K, V, H, E>& cache,
                                                            const RedisKeyCodec<K>& keys,
                                                            std::chrono::milliseconds ttl) {
  BindingHooks hooks;
  hooks.apply = [c = &cache, keys](WireKind kind, std::string_view text) {
    c->apply(from_wire(kind, text, keys));
  };
  hooks.local_counts = [c = &cache] {
    const CacheStats s = c->stats();
    return std::pair{s.hits, s.misses};
  };
  hooks.cache_watch = cache.watch();
  std::shared_ptr<BindingState> state = bind(core, cache.name(), ttl, std::move(hooks));
  auto listener = std::make_shared<Subscription>(cache.add_invalidation_listener(
      [weak = std::weak_ptr<BindingState>(state), encode = keys.encode](const Invalidation<K>& i) {
        const std::shared_ptr<BindingState> s = weak.lock();
        if (s == nullptr) return;
        using Kind = typename Invalidation<K>::Kind;
        switch (i.kind) {
          case Kind::kKey:
            if (i.key) publish(*s, WireKind::kKey, encode(*i.key));
            break;
          case Kind::kPrefix:
            publish(*s, WireKind::kPrefix, i.pattern);
            break;
          case Kind::kGlob:
            publish(*s, WireKind::kGlob, i.pattern);
            break;
          case Kind::kAll:
            publish(*s, WireKind::kAll, {});
            break;
        }
      }));
  return {state, Subscription([state, listener] {
            listener->reset();  // first: nothing is published for this cache any more
            unbind(state);
          })};
}

}  // namespace detail

template <class K, class V, class Hash = CacheHash<K>, class Eq = std::equal_to<>>
class RedisBinding {
 public:
  using Cache = TtlCache<K, V, Hash, Eq>;

  RedisBinding(RedisBinding&&) noexcept = default;
  RedisBinding& operator=(RedisBinding&&) noexcept = default;

  // The cached value; on a local miss, Redis's; on a miss there too, runs
  // loader(key) in one process (and one thread of it) at a time and shares
  // its result. ttl: this entry's, locally and in Redis. Throws what the
  // loader throws, and std::invalid_argument for a negative ttl; never
  // anything Redis did.
  template <class F>
  V get_or_load(const K& key, F&& loader,
                std::optional<std::chrono::milliseconds> ttl = std::nullopt) {
    return cache_->get_or_load(
        key, [&](const K& k) { return load_through(shared_, k, loader, ttl); }, ttl);
  }

  // loader, but going through Redis: for cache().get_or_load(key,
  // binding.loader(f)), warm(keys, binding.loader(f)) and the like. The
  // callable may outlive the binding (it then loads without Redis).
  template <class F>
  auto loader(F f) const {
    return [shared = shared_, f = std::move(f)](const K& key) mutable {
      return load_through(shared, key, f, {});
    };
  }

  Cache& cache() const noexcept { return *cache_; }
  RedisCacheTierStats stats() const { return detail::binding_stats(*shared_->state); }

 private:
  friend class RedisTier;
  RedisBinding(const std::shared_ptr<detail::TierCore>& core, Cache& cache, RedisCodec<V> codec,
               RedisKeyCodec<K> keys, RedisCacheOptions options)
      : cache_(&cache) {
    auto [state, wiring] =
        detail::wire(core, cache, keys, options.ttl.value_or(cache.config().ttl));
    shared_ =
        std::make_shared<const Shared>(Shared{std::move(codec), keys.encode, std::move(state)});
    wiring_ = std::move(wiring);
  }

  // What a load through Redis needs, shared with loader()'s callables.
  struct Shared {
    RedisCodec<V> codec;
    std::function<std::string(const K&)> encode_key;
    std::shared_ptr<detail::BindingState> state;
  };

  template <class F>
  static V load_through(const std::shared_ptr<const Shared>& shared, const K& key, F& loader,
                        std::optional<std::chrono::milliseconds> ttl) {
    std::optional<V> value;
    auto decode = [&](std::string_view bytes) {
      try {
        value = shared->codec.decode(bytes);
      } catch (...) {
        value.reset();  // a codec that throws reads nothing
      }
      return value.has_value();
    };
    auto load = [&]() -> std::optional<std::string> {
      value.emplace(loader(key));
      try {
        return shared->codec.encode(*value);
      } catch (...) {
        return std::nullopt;  // not shareable; still this caller's value
      }
    };
    detail::shared_load(*shared->state, shared->encode_key(key), ttl, decode, load);
    return std::move(*value);
  }

  Cache* cache_;
  std::shared_ptr<const Shared> shared_;
  Subscription wiring_;  // last: ends first
};

}  // namespace poolscope::cache
