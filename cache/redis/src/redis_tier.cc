#include "poolscope/cache/redis/redis_tier.h"

#include "connection.h"
#include "tier_core.h"

namespace poolscope::cache {

RedisTier::RedisTier(RedisTierConfig config)
    : core_(std::make_shared<detail::TierCore>(std::move(config))) {
  core_->start();
}

RedisTier::~RedisTier() {
  lifeline_.end();  // first: a scrape in progress finishes, later ones see the tier gone
  core_->shutdown();
}

void RedisTier::ping() {
  // A connection of its own, past the breaker: the question is whether
  // Redis answers now, not whether the tier would call it.
  detail::Connection connection(core_->url(), core_->config().connect_timeout);
  const auto deadline =
      detail::SteadyClock::now() + core_->config().connect_timeout + core_->config().timeout;
  const std::string_view argv[] = {"PING"};
  const detail::CallResult r = connection.call(argv, deadline);
  if (!r.ok()) throw RedisError("Redis at " + core_->url().redacted() + ": " + r.error);
}

RedisTierStats RedisTier::stats() const { return core_->stats(); }

const std::string& RedisTier::url() const noexcept { return core_->url().redacted(); }

const RedisTierConfig& RedisTier::config() const noexcept { return core_->config(); }

}  // namespace poolscope::cache
