// What the templates of redis_binding.h need from the tier, without
// hiredis: a binding's opaque state and the functions on it (defined in
// cache_redis's sources). Not for direct use.

#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "poolscope/base/lifeline.h"
#include "poolscope/cache/redis/redis_stats.h"

namespace poolscope::cache::detail {

class TierCore;
class BindingState;

// A non-owning reference to a callable, for calls that do not keep it.
template <class Signature>
class FunctionRef;
template <class R, class... Args>
class FunctionRef<R(Args...)> {
 public:
  template <class F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, FunctionRef> &&
             std::is_invocable_r_v<R, F&, Args...>)
  FunctionRef(F& f) noexcept  // NOLINT: implicit, as std::function_ref
      : object_(static_cast<void*>(&f)), call_([](void* o, Args... args) -> R {
          return (*static_cast<F*>(o))(std::forward<Args>(args)...);
        }) {}
  R operator()(Args... args) const { return call_(object_, std::forward<Args>(args)...); }

 private:
  void* object_;
  R (*call_)(void*, Args...);
};

// An invalidation as it crosses processes.
enum class WireKind : char { kKey = 'k', kPrefix = 'p', kGlob = 'g', kAll = 'a' };

// What the tier may call on a bound cache, from its subscriber thread.
struct BindingHooks {
  // Applies another process's invalidation to the local cache (key or pattern text).
  std::function<void(WireKind, std::string_view)> apply;
  // The local cache's hits and misses, for stats.
  std::function<std::pair<std::uint64_t, std::uint64_t>()> local_counts;
  // The two above are called only while this watch's guard holds.
  poolscope::detail::Lifeline::Watch cache_watch;
};

// Registers the cache `name` with the tier. ttl: the Redis TTL of its
// values (zero: none). Throws std::invalid_argument for a name the tier
// cannot use (':' in it, or already bound).
std::shared_ptr<BindingState> bind(const std::shared_ptr<TierCore>& core, const std::string& name,
                                   std::chrono::milliseconds ttl, BindingHooks hooks);
void unbind(const std::shared_ptr<BindingState>& binding) noexcept;

// A local invalidation: to Redis (UNLINK, or SCAN + UNLINK), then to every
// process. Never throws; what cannot reach Redis now is retried later.
void publish(BindingState& binding, WireKind kind, std::string_view text) noexcept;

// The read path below the local cache: Redis, else the load lock, else
// load(). decode(bytes) takes a value found in Redis (false: unreadable);
// load() runs the loader and returns the value's bytes to share (nullopt:
// not shareable). Returns once decode() accepted a value or load() ran;
// throws what load() throws. ttl: the entry's, else the binding's.
void shared_load(BindingState& binding, std::string_view key,
                 std::optional<std::chrono::milliseconds> ttl,
                 FunctionRef<bool(std::string_view)> decode,
                 FunctionRef<std::optional<std::string>()> load);

RedisCacheTierStats binding_stats(const BindingState& binding);
// The binding's Redis TTL.
std::chrono::milliseconds binding_ttl(const BindingState& binding) noexcept;

}  // namespace poolscope::cache::detail
