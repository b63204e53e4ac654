// Invalidations across processes: a local one goes to Redis (UNLINK of the
// key, or SCAN MATCH + UNLINK in batches for a pattern, after bumping the
// generation that makes racing stores fail), then to every process over
// pub/sub. Messages are "<origin>\n<cache>\n<kind>\n<key or pattern>"; a
// process skips its own.
//
// What cannot reach Redis waits in pending_ (bounded: past
// max_pending_invalidations, a cache's entries become one clear of it) and
// is replayed from the subscriber thread's tick; until then reads of that
// cache skip Redis, which may still hold what was invalidated.
//
// Coherence when the link is down: other processes' messages cannot arrive,
// so every tick empties the bound caches and reads skip Redis; after the
// subscriber is back (and has flushed), reads skip Redis for settle() more,
// while the others replay their queues (see RedisTier).

#include <hiredis/hiredis.h>
#include <spdlog/common.h>

#include <limits>
#include <map>
#include <utility>

#include "scripts.h"
#include "subscriber.h"
#include "tier_core.h"

namespace poolscope::cache::detail {
namespace {

using Argv = std::vector<std::string_view>;

bool is_string(const redisReply* r) { return r->type == REDIS_REPLY_STRING; }

// A key-generation key outlives every lock that could have read it.
std::string generation_ttl_ms(std::chrono::milliseconds lock_ttl) {
  return std::to_string(std::max<std::int64_t>(2 * lock_ttl.count(), 60'000));
}

}  // namespace

std::string redis_match(std::string_view literal, std::optional<std::string_view> glob) {
  std::string out;
  for (const char c : literal) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out += '\\';
    out += c;
  }
  if (!glob) return out + "*";
  // poolscope's globs know '*', '?' and '\' escapes; every other character
  // is literal, so Redis's '[' and ']' (and a trailing '\') get escaped.
  for (std::size_t i = 0; i < glob->size(); ++i) {
    const char c = (*glob)[i];
    if (c == '\\' && i + 1 < glob->size()) {
      out += '\\';
      out += (*glob)[++i];
    } else if (c == '*' || c == '?') {
      out += c;
    } else {
      if (c == '[' || c == ']' || c == '\\') out += '\\';
      out += c;
    }
  }
  return out;
}

std::string TierCore::message(const BindingState& binding, WireKind kind,
                              std::string_view text) const {
  std::string out = origin_;
  out += '\n';
  out += binding.name;
  out += '\n';
  out += static_cast<char>(kind);
  out += '\n';
  out += text;
  return out;
}

bool TierCore::delete_matching(const std::string& match) {
  std::string cursor = "0";
  do {
    const std::string_view scan[] = {"SCAN", cursor, "MATCH", match, "COUNT", "1000"};
    const CallResult r = call(scan);
    if (!r.ok() || r.reply->type != REDIS_REPLY_ARRAY || r.reply->elements != 2 ||
        !is_string(r.reply->element[0]) || r.reply->element[1]->type != REDIS_REPLY_ARRAY) {
      return false;
    }
    const redisReply* keys = r.reply->element[1];
    if (keys->elements > 0) {
      Argv unlink = {"UNLINK"};
      for (std::size_t i = 0; i < keys->elements; ++i) {
        if (is_string(keys->element[i]))
          unlink.emplace_back(keys->element[i]->str, keys->element[i]->len);
      }
      if (!call(unlink).ok()) return false;
    }
    cursor.assign(r.reply->element[0]->str, r.reply->element[0]->len);
  } while (cursor != "0");
  return true;
}

bool TierCore::send(BindingState& binding, WireKind kind, std::string_view text, bool eager) {
  const std::string payload = message(binding, kind, text);
  if (kind == WireKind::kKey) {
    const std::string value_key = binding.key_prefix + std::string(text);
    const std::string key_gen = binding.key_gen_prefix + std::string(text);
    const std::string gen_ttl = generation_ttl_ms(config_.lock_ttl);
    const std::string_view argv[] = {
        "EVAL", kInvalidateKeyScript, "2", value_key, key_gen, channel_, payload, gen_ttl};
    if (!call(argv, eager).ok()) return false;
  } else {
    const std::string_view incr[] = {"INCR", binding.gen_key};
    if (!call(incr, eager).ok()) return false;
    const std::string match =
        kind == WireKind::kPrefix
            ? redis_match(binding.key_prefix + std::string(text), std::nullopt)
        : kind == WireKind::kGlob ? redis_match(binding.key_prefix, text)
                                  : redis_match(binding.key_prefix, std::nullopt);
    if (!delete_matching(match)) return false;
    const std::string_view publish[] = {"PUBLISH", channel_, payload};
    if (!call(publish).ok()) return false;
  }
  counters_.published.fetch_add(1, std::memory_order_relaxed);
  binding.published.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void TierCore::invalidate(BindingState& binding, WireKind kind, std::string_view text) noexcept {
  try {
    if (closed()) return;
    if (!send(binding, kind, text)) return queue(binding, kind, text);
    // The cache invalidated itself before telling Redis: a reader of this
    // process that missed in between may have brought the old value back
    // from Redis. Redis no longer has it, so apply the invalidation here
    // once more (listeners are not called again; loads running now are
    // kept out as for any invalidation).
    binding.hooks.apply(kind, text);
  } catch (...) {
    // Out of memory: the local invalidation happened; the others' TTLs remain.
  }
}

void TierCore::queue(BindingState& binding, WireKind kind, std::string_view text) {
  std::string collapsed;  // set when this call is the outage's first collapse: logged
  {
    poolscope::detail::MutexLock lock(pending_mu_);
    if (pending_.size() < config_.max_pending_invalidations) {
      pending_.push_back({binding.shared_from_this(), kind, std::string(text), next_pending_++});
      binding.pending.fetch_add(1, std::memory_order_release);
    } else {
      // Full: every cache with queued invalidations (and this one) gets one
      // clear instead, which covers all of them.
      std::map<std::string, std::shared_ptr<BindingState>> caches;
      for (Pending& p : pending_) caches.emplace(p.binding->name, std::move(p.binding));
      caches.emplace(binding.name, binding.shared_from_this());
      pending_.clear();
      const bool first = collapses_++ == 0;
      for (auto& [name, b] : caches) {
        b->pending.store(1, std::memory_order_release);
        pending_.push_back({std::move(b), WireKind::kAll, {}, next_pending_++});
        if (first) collapsed += (collapsed.empty() ? "" : ", ") + name;
      }
    }
    pending_count_.store(pending_.size(), std::memory_order_release);
  }
  if (!collapsed.empty()) {
    // Once per outage: while Redis stays away, a busy writer fills the
    // queue again and again.
    log(spdlog::level::warn, "more than " + std::to_string(config_.max_pending_invalidations) +
                                 " invalidations are waiting for Redis; it will be cleared of " +
                                 "the caches " + collapsed +
                                 " instead (said once until the queue is sent)");
  }
}

void TierCore::release_later(std::string lock_key, std::string token) noexcept {
  try {
    poolscope::detail::MutexLock lock(pending_mu_);
    if (releases_.size() >= config_.max_pending_invalidations) releases_.pop_front();
    releases_.emplace_back(std::move(lock_key), std::move(token));
    releases_count_.store(releases_.size(), std::memory_order_release);
  } catch (...) {
    // Out of memory: the lock expires by itself.
  }
}

bool TierCore::send_releases(bool eager) {
  for (;;) {
    std::pair<std::string, std::string> r;
    {
      poolscope::detail::MutexLock lock(pending_mu_);
      if (releases_.empty()) return true;
      r = releases_.front();
    }
    const std::string_view argv[] = {"EVAL", kReleaseScript, "1", r.first, r.second};
    if (!call(argv, eager).ok()) return false;
    eager = false;
    poolscope::detail::MutexLock lock(pending_mu_);
    if (!releases_.empty() && releases_.front() == r) releases_.pop_front();
    releases_count_.store(releases_.size(), std::memory_order_release);
  }
}

void TierCore::replay_pending() noexcept {
  try {
    // The first call may probe a backing-off breaker: locks are freed, and
    // the others hear of these invalidations, a tick after Redis answers,
    // not a back-off later.
    if (releases_count_.load(std::memory_order_acquire) != 0 && !closed() &&
        !send_releases(/*eager=*/true)) {
      return;
    }
    std::uint64_t collapses = 0;  // of the outage now over, to say so
    for (bool first = true; has_pending() && !closed(); first = false) {
      Pending p;
      {
        poolscope::detail::MutexLock lock(pending_mu_);
        if (pending_.empty()) break;
        p = pending_.front();
      }
      if (!send(*p.binding, p.kind, p.text, first)) return;
      poolscope::detail::MutexLock lock(pending_mu_);
      // Unless the queue was collapsed meanwhile (its clear covers this one).
      if (!pending_.empty() && pending_.front().sequence == p.sequence) {
        pending_.pop_front();
        p.binding->pending.fetch_sub(1, std::memory_order_release);
        pending_count_.store(pending_.size(), std::memory_order_release);
        if (pending_.empty()) collapses = std::exchange(collapses_, 0);
      }
    }
    if (collapses > 0) {
      log(spdlog::level::info,
          "the invalidations waiting for Redis have been sent (the queue "
          "was collapsed into clears " +
              std::to_string(collapses) + " time(s))");
    }
  } catch (...) {
    // Out of memory: retried on the next tick.
  }
}

void TierCore::on_message(std::string_view payload) noexcept {
  const std::size_t a = payload.find('\n');
  if (a == std::string_view::npos) return;  // not one of ours
  const std::size_t b = payload.find('\n', a + 1);
  if (b == std::string_view::npos || payload.size() < b + 3 || payload[b + 2] != '\n') return;
  if (payload.substr(0, a) == origin_) return;  // we applied it before sending it
  const std::string_view name = payload.substr(a + 1, b - a - 1);
  const char kind = payload[b + 1];
  if (kind != 'k' && kind != 'p' && kind != 'g' && kind != 'a') return;
  std::shared_ptr<BindingState> binding;
  {
    poolscope::detail::MutexLock lock(bindings_mu_);
    const auto it = bindings_.find(name);
    if (it == bindings_.end()) return;
    binding = it->second;
  }
  if (const auto alive = binding->hooks.cache_watch.lock()) {
    try {
      binding->hooks.apply(static_cast<WireKind>(kind), payload.substr(b + 3));
    } catch (...) {
      // A key that does not decode was flushed instead; nothing else throws.
    }
  }
  // Counted once applied: whoever sees the count sees the cache without
  // what the message invalidated.
  counters_.received.fetch_add(1, std::memory_order_release);
  binding->received.fetch_add(1, std::memory_order_release);
}

void TierCore::on_subscribed() noexcept {
  const bool reconnected = subscriber_lost_.exchange(false, std::memory_order_relaxed);
  std::vector<std::shared_ptr<BindingState>> bindings;
  try {
    poolscope::detail::MutexLock lock(bindings_mu_);
    for (const auto& [name, b] : bindings_) bindings.push_back(b);
  } catch (...) {
    bindings.clear();  // out of memory: the flags stay set for the next time
  }
  // Messages sent while we were not subscribed are lost: drop what they
  // may have invalidated.
  std::size_t flushed = 0;
  for (const std::shared_ptr<BindingState>& b : bindings) {
    if (!b->may_have_missed.exchange(false, std::memory_order_relaxed)) continue;
    ++flushed;
    if (const auto alive = b->hooks.cache_watch.lock()) {
      try {
        b->hooks.apply(WireKind::kAll, {});
      } catch (...) {
      }
    }
  }
  if (flushed > 0) counters_.subscriber_flushes.fetch_add(1, std::memory_order_relaxed);
  counters_.subscriber_connects.fetch_add(1, std::memory_order_relaxed);
  if (reconnected) {
    const auto from = SteadyClock::now() + settle();
    redis_readable_from_.store(from.time_since_epoch().count(), std::memory_order_release);
  }
  // After the flush: who sees "connected" may rely on the caches staying as they are.
  counters_.subscriber_connected.store(true, std::memory_order_release);
  first_attempt_done();
  if (reconnected) {
    log(spdlog::level::info, "invalidation subscriber connected again; flushed " +
                                 std::to_string(flushed) +
                                 " local caches, as it may have missed invalidations");
  }
}

void TierCore::on_subscriber_lost(const std::string& error, bool was_connected) noexcept {
  subscriber_lost_.store(true, std::memory_order_relaxed);
  redis_readable_from_.store(std::numeric_limits<SteadyClock::rep>::max(),
                             std::memory_order_release);
  {
    poolscope::detail::MutexLock lock(bindings_mu_);
    counters_.subscriber_connected.store(false, std::memory_order_relaxed);
    for (const auto& [name, b] : bindings_)
      b->may_have_missed.store(true, std::memory_order_relaxed);
  }
  drop_local();
  first_attempt_done();
  log(spdlog::level::warn,
      (was_connected ? "invalidation subscriber lost its connection (" + error +
                           "); other processes' invalidations cannot arrive until it reconnects"
                     : "invalidation subscriber cannot connect (" + error + "); retrying") +
          std::string("; meanwhile reads skip Redis and local entries live one tick (") +
          std::to_string(Subscriber::Config{}.tick_interval.count()) + " ms)");
}

void TierCore::on_tick() noexcept {
  // Other processes' invalidations cannot arrive: what is cached here is
  // kept for a tick at most.
  if (!counters_.subscriber_connected.load(std::memory_order_acquire)) drop_local();
  replay_pending();
}

void TierCore::drop_local() noexcept {
  std::vector<std::shared_ptr<BindingState>> bindings;
  try {
    poolscope::detail::MutexLock lock(bindings_mu_);
    for (const auto& [name, b] : bindings_) bindings.push_back(b);
  } catch (...) {
    return;  // out of memory: the next tick tries again
  }
  for (const std::shared_ptr<BindingState>& b : bindings) {
    if (const auto alive = b->hooks.cache_watch.lock()) {
      try {
        b->hooks.apply(WireKind::kAll, {});
      } catch (...) {
      }
    }
  }
}

}  // namespace poolscope::cache::detail
