// RedisTier as a SettingsCache's shared tier: an entity's settings are one
// Redis value ({prefix}:{cache}:{entity}, the settings codec), with the
// cache's TTL; save(), invalidate() and clear() reach every process through
// the cache's invalidation listener, as any attached cache's do.

#include "poolscope/cache/redis/redis_tier.h"
#include "tier_core.h"

namespace poolscope::cache {
namespace {

class SettingsLink final : public SettingsTier::Link {
 public:
  SettingsLink(const std::shared_ptr<detail::TierCore>& core, SettingsCache& cache)
      : table_(std::make_shared<const SettingsTable>(cache.config().table)) {
    auto [state, wiring] =
        detail::wire(core, cache.cache(), builtin_key_codec<std::int64_t>(), cache.config().ttl);
    state_ = std::move(state);
    wiring_ = std::move(wiring);
  }

  std::shared_ptr<const Settings> load(
      std::int64_t entity,
      const std::function<std::shared_ptr<const Settings>(std::int64_t)>& database) override {
    std::shared_ptr<const Settings> value;
    auto decode = [&](std::string_view bytes) {
      value = decode_settings(table_, entity, bytes);
      return value != nullptr;
    };
    auto produce = [&]() -> std::optional<std::string> {
      value = database(entity);
      return encode_settings(*value);
    };
    detail::shared_load(*state_, detail::to_text(entity), std::nullopt, decode, produce);
    return value;
  }

 private:
  const std::shared_ptr<const SettingsTable> table_;
  std::shared_ptr<detail::BindingState> state_;
  Subscription wiring_;
};

}  // namespace

std::unique_ptr<SettingsTier::Link> RedisTier::link(SettingsCache& cache) {
  return std::make_unique<SettingsLink>(core_, cache);
}

}  // namespace poolscope::cache
