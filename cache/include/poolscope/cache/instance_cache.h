// InstanceCache<Id, T>: one shared instance per id, built by a factory the
// first time it is asked for (the incidents' AccountInstanceCache):
//
//   InstanceCache<int, Account> accounts(
//       [&](const int& id) { return std::make_shared<Account>(id, settings); });
//   std::shared_ptr<Account> a = accounts.get(7);   // the same object every time
//
// Concurrent first requests for an id build one instance (single flight).
// force_new builds a fresh one and replaces the cached one; holders of the
// old instance keep it alive as long as they like. Either way, what building
// took (pool checkouts, hits in other caches) is what later hits count as
// sessions avoided.
//
// An instance is as fresh as what it was built from: the entries of
// poolscope caches the factory reads on its thread (an Account's settings)
// are recorded, and when one of them is saved, invalidated or replaced, here
// or through TtlCache::apply() from another process, the instance is evicted
// and the next get builds a new one; it also expires with them. A save while
// the factory runs keeps that build out of the cache.
//
// The class is thread-safe. No concurrent call to any API of this type causes
// a data race. The factory runs outside the cache's locks.

#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include "poolscope/cache/ttl_cache.h"

namespace poolscope::cache {

struct InstanceCacheConfig {
  // Label in stats and metrics: 1 to 64 of A-Z a-z 0-9 _ . : -.
  std::string name = "instances";
  // At least 1; past it, instances not asked for lately go first.
  std::size_t max_instances = 10'000;
  // Instances older than this are rebuilt on the next get. Zero: never.
  std::chrono::milliseconds ttl{0};
  std::shared_ptr<CacheClock> clock{};  // null: default_clock()

  // Throws std::invalid_argument naming the first invalid field and its value.
  void validate() const;
};

template <class Id, class T>
class InstanceCache {
 public:
  using Factory = std::function<std::shared_ptr<T>(const Id&)>;

  // REQUIRES: factory returns non-null (a null result throws std::logic_error).
  // Throws std::invalid_argument for an empty factory or a bad config.
  explicit InstanceCache(Factory factory, InstanceCacheConfig config = {})
      : factory_(std::move(factory)), cache_(ttl_config(std::move(config))) {
    if (!factory_) throw std::invalid_argument("InstanceCache: the factory is empty");
  }

  // The instance for id, built on first use. With force_new, a new instance
  // replaces the cached one (a build of id already running is superseded;
  // see TtlCache::reload). Throws what the factory throws (nothing cached).
  std::shared_ptr<T> get(const Id& id, bool force_new = false) {
    const auto factory = [this](const Id& key) { return build(key); };
    return force_new ? cache_.reload(id, factory) : cache_.get_or_load(id, factory);
  }

  // The cached instance, if any, without building one.
  std::shared_ptr<T> peek(const Id& id) { return cache_.get(id).value_or(nullptr); }

  // Drops the instance for id; the next get builds a new one.
  bool evict(const Id& id) { return cache_.erase(id); }
  void clear() { cache_.clear(); }

  CacheStats stats() const { return cache_.stats(); }
  const std::string& name() const noexcept { return cache_.name(); }

  // See TtlCache::watch(). (cache_ is the last member: while it lives, so does this.)
  poolscope::detail::Lifeline::Watch watch() const { return cache_.watch(); }

  // The underlying cache (an invalidation bus, metrics).
  TtlCache<Id, std::shared_ptr<T>>& cache() noexcept { return cache_; }

 private:
  static TtlCacheConfig ttl_config(InstanceCacheConfig c) {
    c.validate();
    TtlCacheConfig out;
    out.name = std::move(c.name);
    out.max_entries = c.max_instances;
    out.ttl = c.ttl;
    out.clock = std::move(c.clock);
    return out;
  }

  std::shared_ptr<T> build(const Id& id) {
    std::shared_ptr<T> instance = factory_(id);
    if (instance == nullptr)
      throw std::logic_error("InstanceCache '" + name() + "': the factory returned null");
    return instance;
  }

  const Factory factory_;
  TtlCache<Id, std::shared_ptr<T>> cache_;
};

}  // namespace poolscope::cache
