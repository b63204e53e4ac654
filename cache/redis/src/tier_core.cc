#include "tier_core.h"

#include <spdlog/logger.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <tuple>

#include "poolscope/base/config_check.h"
#include "poolscope/base/duration_text.h"
#include "poolscope/base/log_text.h"
#include "subscriber.h"

namespace poolscope::cache {

void RedisTierConfig::validate() const {
  constexpr std::string_view kConfig = "RedisTierConfig";
  using namespace poolscope::detail;
  if (url.empty()) invalid_field(kConfig, "url", "must be a redis:// or unix:// URL", "''");
  const bool prefix_ok = !prefix.empty() && prefix.size() <= 64 &&
                         std::all_of(prefix.begin(), prefix.end(), [](char c) {
                           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                  (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
                         });
  if (!prefix_ok) {
    invalid_field(kConfig, "prefix", "must be 1 to 64 of A-Z a-z 0-9 _ . -",
                  "'" + prefix.substr(0, 80) + "'");
  }
  check_at_least(kConfig, "connections", connections, 1);
  check_at_most(kConfig, "connections", connections, 64);
  check_positive(kConfig, "connect_timeout", connect_timeout);
  check_positive(kConfig, "timeout", timeout);
  check_positive(kConfig, "lock_ttl", lock_ttl);
  check_positive(kConfig, "lock_poll", lock_poll);
  check_at_least(kConfig, "failure_threshold", failure_threshold, 1);
  check_positive(kConfig, "backoff", backoff);
  if (max_backoff < backoff) {
    invalid_field(kConfig, "max_backoff", "must be at least backoff (" + ms_text(backoff) + ")",
                  ms_text(max_backoff));
  }
  check_positive(kConfig, "ping_interval", ping_interval);
  check_at_least(kConfig, "max_pending_invalidations", max_pending_invalidations, 1);
}

namespace detail {
namespace {

RedisTierConfig validated(RedisTierConfig config) {
  config.validate();
  return config;
}

std::shared_ptr<spdlog::logger> logger_for(const RedisTierConfig& config) {
  if (config.logger != nullptr) return config.logger;
  if (auto logger = spdlog::get("poolscope")) return logger;
  try {
    return spdlog::stderr_color_mt("poolscope");
  } catch (const spdlog::spdlog_ex&) {
    return spdlog::get("poolscope");  // registered by another thread meanwhile
  }
}

std::string random_origin() {
  std::random_device device;
  std::mt19937_64 gen((static_cast<std::uint64_t>(device()) << 32) ^ device());
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(gen()));
  return text;
}

}  // namespace

BindingState::BindingState(std::shared_ptr<TierCore> c, std::string n, std::chrono::milliseconds t,
                           BindingHooks h)
    : core(std::move(c)),
      name(std::move(n)),
      key_prefix(core->config().prefix + ":" + name + ":"),
      lock_prefix(core->config().prefix + ":" + name + "#lock:"),
      gen_key(core->config().prefix + ":" + name + "#gen"),
      key_gen_prefix(gen_key + ":"),
      ttl(t),
      hooks(std::move(h)) {}

TierCore::TierCore(RedisTierConfig config)
    : config_(validated(std::move(config))),
      url_(RedisUrl::parse(config_.url)),
      channel_(config_.prefix + "#invalidations:" + std::to_string(url_.database())),
      origin_(random_origin()),
      logger_(logger_for(config_)),
      connections_(url_, config_.connections, config_.connect_timeout),
      breaker_({config_.failure_threshold, config_.backoff, config_.max_backoff},
               [this](const Breaker::Change& change) { on_breaker(change); }) {}

TierCore::~TierCore() { shutdown(); }

void TierCore::start() {
  Subscriber::Config sc;
  sc.connect_timeout = config_.connect_timeout;
  sc.timeout = config_.timeout;
  sc.ping_interval = config_.ping_interval;
  sc.max_retry_delay = config_.backoff;
  Subscriber::Handlers handlers;
  handlers.message = [this](std::string_view payload) { on_message(payload); };
  handlers.subscribed = [this] { on_subscribed(); };
  handlers.lost = [this](const std::string& error, bool was) { on_subscriber_lost(error, was); };
  handlers.attempted = [this](const CallResult& r) { on_attempt(r); };
  handlers.tick = [this] { on_tick(); };
  {
    poolscope::detail::MutexLock lock(subscriber_mu_);
    if (closed() || subscriber_ != nullptr) return;
    subscriber_ = std::make_unique<Subscriber>(url_, channel_, sc, std::move(handlers));
  }
  const auto deadline = SteadyClock::now() + config_.connect_timeout + config_.timeout;
  poolscope::detail::MutexLock lock(first_mu_);
  while (!first_attempt_done_ && first_cv_.wait_until(first_mu_, deadline)) {
  }
}

void TierCore::first_attempt_done() noexcept {
  {
    poolscope::detail::MutexLock lock(first_mu_);
    if (first_attempt_done_) return;
    first_attempt_done_ = true;
  }
  first_cv_.notify_all();
}

void TierCore::shutdown() noexcept {
  closed_.store(true, std::memory_order_release);
  std::unique_ptr<Subscriber> subscriber;
  {
    poolscope::detail::MutexLock lock(subscriber_mu_);
    subscriber = std::move(subscriber_);
  }
  subscriber.reset();  // joins, outside the lock
  connections_.close();
  counters_.subscriber_connected.store(false, std::memory_order_relaxed);
}

std::chrono::milliseconds TierCore::settle() const noexcept {
  // A process that queued invalidations sends them from its subscriber
  // thread's next tick (which may follow a connect attempt of its own).
  return config_.connect_timeout + config_.timeout + 2 * Subscriber::Config{}.tick_interval;
}

std::string TierCore::new_token() {
  return origin_ + ":" + std::to_string(next_token_.fetch_add(1, std::memory_order_relaxed));
}

void TierCore::log(int level, const std::string& message) noexcept {
  try {
    if (logger_ != nullptr) {
      logger_->log(static_cast<spdlog::level::level_enum>(level), "Redis tier ({}): {}",
                   url_.redacted(), log_text(url_.scrub(message)));
    }
  } catch (...) {
    // A log line must not break the cache.
  }
}

CallResult TierCore::call(std::span<const std::string_view> argv, bool eager) {
  if (closed()) return {CallStatus::kSkipped, nullptr, "the tier is closed", false};
  const Breaker::Permit permit = breaker_.allow(eager);
  if (permit == Breaker::Permit::kSkip) {
    counters_.skipped.fetch_add(1, std::memory_order_relaxed);
    return {CallStatus::kSkipped, nullptr, "backing off", false};
  }
  const auto started = SteadyClock::now();
  const auto deadline = started + config_.timeout;
  CallResult result;
  if (std::optional<ConnectionSet::Lease> lease = connections_.acquire(deadline)) {
    result = (*lease)->call(argv, deadline);
  } else if (closed()) {
    return {CallStatus::kSkipped, nullptr, "the tier is closed", false};
  } else {
    // Every connection busy until the deadline: calls are piling up behind
    // slow ones, which is what the breaker is for.
    result = {CallStatus::kTimeout, nullptr, "no free connection within the timeout", true};
  }
  record(result, SteadyClock::now() - started);
  breaker_.record(permit, result.server_failure, result.error);
  return result;
}

void TierCore::on_attempt(const CallResult& result) noexcept {
  // The subscriber's link counts as calls do: while it is down, reads skip
  // Redis and make none, so it is what opens the breaker when Redis is
  // away; and its success is as good as a probe.
  count(result);
  try {
    const Breaker::Permit permit =
        result.ok() ? breaker_.allow(/*eager=*/true) : Breaker::Permit::kGo;
    breaker_.record(permit, result.server_failure, result.error);
  } catch (...) {
    // Out of memory for the log line: the next attempt reports.
  }
}

void TierCore::count(const CallResult& result) noexcept {
  counters_.calls.fetch_add(1, std::memory_order_relaxed);
  if (result.status == CallStatus::kTimeout) {
    counters_.timeouts.fetch_add(1, std::memory_order_relaxed);
  } else if (result.status != CallStatus::kOk) {
    counters_.errors.fetch_add(1, std::memory_order_relaxed);
  }
}

void TierCore::record(const CallResult& result, std::chrono::nanoseconds took) noexcept {
  count(result);
  const double seconds = std::chrono::duration<double>(took).count();
  const auto& bounds = RedisLatencyHistogram::kBoundsSeconds;
  const std::size_t bucket = static_cast<std::size_t>(
      std::lower_bound(bounds.begin(), bounds.end(), seconds) - bounds.begin());
  counters_.latency[bucket].fetch_add(1, std::memory_order_relaxed);
  counters_.latency_count.fetch_add(1, std::memory_order_relaxed);
  counters_.latency_ns.fetch_add(static_cast<std::uint64_t>(took.count()),
                                 std::memory_order_relaxed);
}

void TierCore::on_breaker(const Breaker::Change& change) noexcept {
  if (change.opened) {
    counters_.breaker_opened.fetch_add(1, std::memory_order_relaxed);
    log(spdlog::level::warn, std::to_string(change.failures) +
                                 " calls failed in a row (last: " + change.last_error +
                                 "); not calling Redis for " + duration_text(change.backoff) +
                                 ", then probing; caches read through to their loaders meanwhile");
  } else {
    counters_.breaker_closed.fetch_add(1, std::memory_order_relaxed);
    log(spdlog::level::info, "Redis answers again after " + duration_text(change.down_for) +
                                 " without it; calls resume");
  }
}

std::shared_ptr<BindingState> TierCore::add_binding(const std::shared_ptr<TierCore>& self,
                                                    const std::string& name,
                                                    std::chrono::milliseconds ttl,
                                                    BindingHooks hooks) {
  if (name.find(':') != std::string::npos) {
    throw std::invalid_argument("RedisTier: cache name '" + name +
                                "' must not contain ':' (Redis keys are {prefix}:{cache}:{key})");
  }
  auto state = std::make_shared<BindingState>(self, name, ttl, std::move(hooks));
  poolscope::detail::MutexLock lock(bindings_mu_);
  // Under the lock that on_subscriber_lost() flags the bindings under: a
  // binding is flagged by one or the other.
  if (!counters_.subscriber_connected.load(std::memory_order_acquire)) {
    state->may_have_missed.store(true, std::memory_order_relaxed);
  }
  if (!bindings_.emplace(name, state).second) {
    throw std::invalid_argument("RedisTier: a cache named '" + name +
                                "' is attached already (cache names share Redis keys)");
  }
  return state;
}

void TierCore::remove_binding(const BindingState& binding) noexcept {
  poolscope::detail::MutexLock lock(bindings_mu_);
  const auto it = bindings_.find(binding.name);
  if (it != bindings_.end() && it->second.get() == &binding) bindings_.erase(it);
}

RedisCacheTierStats TierCore::binding_stats(const BindingState& b) const {
  constexpr auto relaxed = std::memory_order_relaxed;
  RedisCacheTierStats s;
  s.cache = b.name;
  if (const auto alive = b.hooks.cache_watch.lock()) {
    std::tie(s.local_hits, s.local_misses) = b.hooks.local_counts();
  }
  s.redis_hits = b.redis_hits.load(relaxed);
  s.redis_misses = b.redis_misses.load(relaxed);
  s.decode_failures = b.decode_failures.load(relaxed);
  s.loads = b.loads.load(relaxed);
  s.fallback_loads = b.fallback_loads.load(relaxed);
  s.stores = b.stores.load(relaxed);
  s.sessions_avoided = b.sessions_avoided.load(relaxed);
  s.lock_acquired = b.lock_acquired.load(relaxed);
  s.lock_waited = b.lock_waited.load(relaxed);
  s.lock_expired = b.lock_expired.load(relaxed);
  s.invalidations_published = b.published.load(relaxed);
  s.invalidations_received = b.received.load(relaxed);
  return s;
}

RedisTierStats TierCore::stats() const {
  constexpr auto relaxed = std::memory_order_relaxed;
  RedisTierStats s;
  s.url = url_.redacted();
  s.prefix = config_.prefix;
  s.state = breaker_.state();
  s.calls = counters_.calls.load(relaxed);
  s.errors = counters_.errors.load(relaxed);
  s.timeouts = counters_.timeouts.load(relaxed);
  s.skipped = counters_.skipped.load(relaxed);
  s.breaker_opened = counters_.breaker_opened.load(relaxed);
  s.breaker_closed = counters_.breaker_closed.load(relaxed);
  for (std::size_t i = 0; i < s.latency.counts.size(); ++i) {
    s.latency.counts[i] = counters_.latency[i].load(relaxed);
  }
  s.latency.count = counters_.latency_count.load(relaxed);
  s.latency.sum_seconds = static_cast<double>(counters_.latency_ns.load(relaxed)) * 1e-9;
  s.subscriber_connected = counters_.subscriber_connected.load(std::memory_order_acquire);
  s.subscriber_connects = counters_.subscriber_connects.load(relaxed);
  s.subscriber_flushes = counters_.subscriber_flushes.load(relaxed);
  s.invalidations_published = counters_.published.load(relaxed);
  s.invalidations_received = counters_.received.load(relaxed);
  s.invalidations_pending = pending_count_.load(relaxed);
  std::vector<std::shared_ptr<BindingState>> bindings;
  {
    poolscope::detail::MutexLock lock(bindings_mu_);
    for (const auto& [name, b] : bindings_) bindings.push_back(b);
  }
  for (const auto& b : bindings) s.caches.push_back(binding_stats(*b));
  return s;
}

}  // namespace detail
}  // namespace poolscope::cache
