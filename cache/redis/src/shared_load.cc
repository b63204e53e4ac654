// The read path below a local cache (shared_load), and the other entry
// points of detail/binding.h.
//
// A local miss asks Redis (GET). On a miss there the acquire script either
// finds the value after all, or takes the load lock (SET NX PX, with this
// load's token) and returns the key's generation, or says who holds the
// lock for how long. The holder runs the loader and stores the value with
// the store script, which also releases the lock; a waiter polls the
// acquire script until the value is there or the lock is its own (the
// holder died or gave up: it loads instead), for about lock_ttl at most.
//
// Any failed call ends the Redis part of the read: the loader runs and
// nothing is stored. So a hung Redis costs one call's timeout per read,
// until the breaker opens (or the subscriber finds the link dead) and costs
// nothing. A lock such a call may have left taken (Redis runs what it was
// sent once it wakes) is released when Redis answers again, so that no
// process waits lock_ttl for it.
//
// Values in Redis are "ps1;<cost>;<bytes>": cost is what the load took in
// pool checkouts (see poolscope/cache/sessions.h), credited as sessions
// avoided to whoever reads the value instead of loading it.

#include <hiredis/hiredis.h>

#include <charconv>
#include <thread>

#include "poolscope/cache/sessions.h"
#include "scripts.h"
#include "tier_core.h"

namespace poolscope::cache::detail {
namespace {

using std::chrono::milliseconds;
constexpr std::string_view kEnvelope = "ps1;";
constexpr auto kRelaxed = std::memory_order_relaxed;

std::string envelope(std::uint64_t cost, std::string_view bytes) {
  std::string out(kEnvelope);
  out += std::to_string(cost);
  out += ';';
  out += bytes;
  return out;
}

// A value found in Redis: decoded (and its cost credited) or counted as
// unreadable.
bool accept(BindingState& b, std::string_view stored, FunctionRef<bool(std::string_view)> decode) {
  std::uint64_t cost = 0;
  if (stored.starts_with(kEnvelope)) {
    const char* begin = stored.data() + kEnvelope.size();
    const char* end = stored.data() + stored.size();
    const auto [ptr, ec] = std::from_chars(begin, end, cost);
    if (ec == std::errc() && ptr != begin && ptr != end && *ptr == ';' &&
        decode(std::string_view(ptr + 1, static_cast<std::size_t>(end - ptr - 1)))) {
      b.sessions_avoided.fetch_add(cost, kRelaxed);
      credit_sessions_avoided(cost);
      return true;
    }
  }
  b.decode_failures.fetch_add(1, kRelaxed);
  return false;
}

std::string_view text_of(const redisReply* r) { return {r->str, r->len}; }

// What the lock step came to.
struct LockStep {
  enum class Outcome { kValue, kAcquired, kFallback } outcome = Outcome::kFallback;
  std::string generation;  // kAcquired
};

struct Keys {
  std::string value, lock, key_gen;
};

LockStep take_lock_or_wait(BindingState& b, const Keys& keys, const std::string& token,
                           bool ignore_value, FunctionRef<bool(std::string_view)> decode) {
  TierCore& core = *b.core;
  const std::string lock_ms = std::to_string(core.config().lock_ttl.count());
  milliseconds poll{2};
  std::optional<SteadyClock::time_point> give_up;  // set once we wait
  for (;;) {
    const std::string_view argv[] = {
        "EVAL",    kAcquireScript, "4",   keys.value, keys.lock,
        b.gen_key, keys.key_gen,   token, lock_ms,    ignore_value ? "1" : "0"};
    const CallResult r = core.call(argv);
    if (!r.ok()) {
      // Sent but unanswered: Redis may yet run it and give us the lock.
      if (r.status != CallStatus::kSkipped) core.release_later(keys.lock, token);
      return {};
    }
    if (r.reply->type != REDIS_REPLY_ARRAY || r.reply->elements != 2 ||
        r.reply->element[0]->type != REDIS_REPLY_INTEGER) {
      return {};
    }
    const redisReply* detail = r.reply->element[1];
    switch (r.reply->element[0]->integer) {
      case 1:  // the value appeared
        if (detail->type == REDIS_REPLY_STRING && accept(b, text_of(detail), decode)) {
          return {LockStep::Outcome::kValue, {}};
        }
        ignore_value = true;  // unreadable: take the lock and overwrite it
        continue;
      case 2:
        if (detail->type != REDIS_REPLY_STRING) {
          core.release_later(keys.lock, token);
          return {};
        }
        b.lock_acquired.fetch_add(1, kRelaxed);
        if (give_up) b.lock_expired.fetch_add(1, kRelaxed);  // we waited for nothing
        return {LockStep::Outcome::kAcquired, std::string(text_of(detail))};
      case 3: {
        const auto now = SteadyClock::now();
        if (!give_up) {
          b.lock_waited.fetch_add(1, kRelaxed);
          const long long left = detail->type == REDIS_REPLY_INTEGER && detail->integer > 0
                                     ? detail->integer
                                     : core.config().lock_ttl.count();
          // The holder's lock, then at most one more holder's.
          give_up = now + milliseconds(left) + core.config().lock_ttl;
        }
        if (now >= *give_up || core.closed()) return {};
        std::this_thread::sleep_for(std::min<SteadyClock::duration>(poll, *give_up - now));
        poll = std::min(poll * 2, core.config().lock_poll);
        continue;
      }
      default:
        return {};
    }
  }
}

void release(TierCore& core, const Keys& keys, const std::string& token) noexcept {
  try {
    const std::string_view argv[] = {"EVAL", kReleaseScript, "1", keys.lock, token};
    if (!core.call(argv).ok()) core.release_later(keys.lock, token);
  } catch (...) {
    // Out of memory: the lock expires by itself.
  }
}

// Runs load() under our lock and stores its bytes for the others.
void load_and_store(BindingState& b, const Keys& keys, const std::string& token,
                    const std::string& generation, milliseconds ttl,
                    FunctionRef<std::optional<std::string>()> load) {
  const std::uint64_t cost_before = session_cost_clock();
  std::optional<std::string> bytes;
  try {
    bytes = load();
  } catch (...) {
    b.loads.fetch_add(1, kRelaxed);
    release(*b.core, keys, token);  // the next process may try at once
    throw;
  }
  b.loads.fetch_add(1, kRelaxed);
  if (!bytes) {
    release(*b.core, keys, token);
    return;
  }
  const std::string value = envelope(session_cost_clock() - cost_before, *bytes);
  const std::string ttl_ms = std::to_string(ttl.count());
  const std::string_view argv[] = {"EVAL",     kStoreScript, "4",          keys.value,
                                   keys.lock,  b.gen_key,    keys.key_gen, token,
                                   generation, value,        ttl_ms};
  const CallResult r = b.core->call(argv);
  if (!r.ok()) {
    b.core->release_later(keys.lock, token);  // whether or not the script ran
  } else if (r.reply->type == REDIS_REPLY_INTEGER && r.reply->integer == 1) {
    b.stores.fetch_add(1, kRelaxed);
  }
}

}  // namespace

void shared_load(BindingState& b, std::string_view key, std::optional<milliseconds> ttl,
                 FunctionRef<bool(std::string_view)> decode,
                 FunctionRef<std::optional<std::string>()> load) {
  TierCore& core = *b.core;
  const auto fallback = [&] {
    b.fallback_loads.fetch_add(1, kRelaxed);
    b.loads.fetch_add(1, kRelaxed);
    (void)load();
  };
  // Redis may hold what a queued invalidation is about: not until it is
  // sent, here or (for a while after an outage) in other processes.
  if (core.closed() || !b.bound.load(std::memory_order_acquire) ||
      b.pending.load(std::memory_order_acquire) != 0 || !core.redis_readable()) {
    return fallback();
  }
  Keys keys{b.key_prefix + std::string(key), b.lock_prefix + std::string(key),
            b.key_gen_prefix + std::string(key)};
  const std::string_view get[] = {"GET", keys.value};
  const CallResult r = core.call(get);
  if (!r.ok()) return fallback();
  bool unreadable = false;
  if (r.reply->type == REDIS_REPLY_STRING) {
    if (accept(b, text_of(r.reply.get()), decode)) {
      b.redis_hits.fetch_add(1, kRelaxed);
      return;
    }
    unreadable = true;
  }
  b.redis_misses.fetch_add(1, kRelaxed);
  const std::string token = core.new_token();
  const LockStep step = take_lock_or_wait(b, keys, token, unreadable, decode);
  switch (step.outcome) {
    case LockStep::Outcome::kValue:
      return;
    case LockStep::Outcome::kFallback:
      return fallback();
    case LockStep::Outcome::kAcquired:
      return load_and_store(b, keys, token, step.generation, ttl.value_or(b.ttl), load);
  }
}

std::shared_ptr<BindingState> bind(const std::shared_ptr<TierCore>& core, const std::string& name,
                                   milliseconds ttl, BindingHooks hooks) {
  return core->add_binding(core, name, ttl, std::move(hooks));
}

void unbind(const std::shared_ptr<BindingState>& binding) noexcept {
  if (binding == nullptr) return;
  binding->bound.store(false, std::memory_order_release);
  binding->core->remove_binding(*binding);
}

void publish(BindingState& binding, WireKind kind, std::string_view text) noexcept {
  binding.core->invalidate(binding, kind, text);
}

RedisCacheTierStats binding_stats(const BindingState& binding) {
  return binding.core->binding_stats(binding);
}

milliseconds binding_ttl(const BindingState& binding) noexcept { return binding.ttl; }

}  // namespace poolscope::cache::detail
