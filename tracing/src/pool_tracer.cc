// The PoolTracer's events: the hot path (checkins) and the session log.
// Leak scanning is in leak_scan.cc, the pool's life and timeouts in
// pool_log.cc.

#include "pool_tracer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <limits>
#include <mutex>
#include <utility>

#include "poolscope/base/log_text.h"
#include "poolscope/base/site.h"
#include "tracer_state.h"

namespace poolscope::tracing::detail {

// A slot's stack, published like a seqlock: `checkout` is zeroed while the
// frames are written and set last, so a reader that sees the same checkout
// before and after copying has a consistent stack.
struct PoolTracer::SlotStack {
  std::atomic<std::uint64_t> checkout{0};
  std::atomic<std::uint32_t> size{0};
  std::array<std::atomic<std::uintptr_t>, StackTrace::kMaxFrames> frames{};
};

namespace {

// The stack on_connect captured on this thread, for the on_checkout of the
// same acquire (the same registry and connection), so a checkout that opens
// a connection captures once.
struct ConnectStack {
  std::uint64_t registry = 0;  // 0: none
  std::uint64_t connection_id = 0;
  StackTrace trace;
};
thread_local ConnectStack t_connect_stack;

// Whether `logger` has been told how to get file:line (true the first time
// it asks): each log says it once, however many tracers write to it.
bool first_hint_for(const std::shared_ptr<spdlog::logger>& logger) {
  static std::mutex mu;
  static auto* const told = new std::vector<std::weak_ptr<spdlog::logger>>;  // never destroyed
  std::lock_guard lock(mu);
  std::erase_if(*told, [](const auto& w) { return w.expired(); });
  for (const std::weak_ptr<spdlog::logger>& w : *told) {
    if (!w.owner_before(logger) && !logger.owner_before(w)) return false;
  }
  told->push_back(logger);
  return true;
}

}  // namespace

PoolTracer::PoolTracer(std::shared_ptr<TracerState> state, Pool& pool)
    : state_(std::move(state)),
      pool_name_(pool.name()),
      url_(pool.redacted_url()),
      slots_(pool.config().pool_size + pool.config().max_overflow),
      stacks_(state_->config().capture_stacks ? new SlotStack[slots_] : nullptr),
      registry_(std::make_shared<SiteRegistry>(state_->config().max_sites)),
      registry_id_(registry_->id()),
      churn_loop_(state_->config().churn_loop == 0 ? std::numeric_limits<std::uint64_t>::max()
                                                   : state_->config().churn_loop),
      churn_gap_ns_(std::chrono::nanoseconds(state_->config().churn_gap).count()),
      reported_(new std::atomic<std::uint64_t>[slots_]),
      rare_at_(churn_loop_),
      scanned_(slots_) {
  for (std::size_t i = 0; i < slots_; ++i) reported_[i].store(0, std::memory_order_relaxed);
}

PoolTracer::~PoolTracer() = default;

std::string PoolTracer::called_from(const source_location& site, const StackTrace& trace) const {
  if (!has_site(site)) return "[Called from: poolscope housekeeping (min_idle)]";
  std::string out = "[Called from: " + format_site(site);
  if (!trace.empty()) {
    bool symbols_only = false;
    for (const StackFrame& caller : trace.callers_of(site, state_->config().stack_depth)) {
      out += " <- " + caller.format();
      symbols_only |= !caller.has_line();
    }
    if (symbols_only && first_hint_for(state_->logger_ptr())) {
      state_->logger().info(
          "poolscope: caller frames show function+offset, not file:line, because the binary has "
          "no debug information; compile with -g1 (line tables only: no run-time cost) to get "
          "file:line");
    }
  }
  return out + "]";
}

unsigned PoolTracer::events() const {
  return stacks_ != nullptr ? kAllEvents : kAllEvents & ~kCheckoutEvents;
}

void PoolTracer::on_connect(const ConnectEvent& e) {
  if (has_site(e.site)) registry().add_opened(registry().index_of(e.site));
  StackTrace trace;
  if (stacks_ != nullptr && has_site(e.site)) {
    trace = StackTrace::capture();
    t_connect_stack = {registry_->id(), e.connection_id, trace};
  }
  spdlog::logger& log = state_->logger();
  if (log.should_log(state_->config().session_level)) {
    // Symbolized only here, when the line is written.
    log.log(state_->config().session_level, "Database session created (id={}, pool={}, url={}) {}",
            e.connection_id, log_text(pool_name_), log_text(url_), called_from(e.site, trace));
  }
}

void PoolTracer::on_connect_failed(const ConnectFailedEvent& e) {
  spdlog::logger& log = state_->logger();
  if (!log.should_log(spdlog::level::warn)) return;
  const StackTrace trace =
      stacks_ != nullptr && has_site(e.site) ? StackTrace::capture() : StackTrace();
  log.warn("Database session could not be opened (pool={}, url={}, attempt {}) {}: {}",
           log_text(pool_name_), log_text(url_), e.attempt, called_from(e.site, trace),
           log_text(e.error));
}

void PoolTracer::on_checkout(const CheckoutEvent& e) {
  if (stacks_ == nullptr || e.slot >= slots_) return;
  ConnectStack& opened = t_connect_stack;
  if (opened.registry == registry_->id() && opened.connection_id == e.connection_id) {
    opened.registry = 0;
    publish_stack(e.slot, e.checkout, opened.trace);
  } else {
    publish_stack(e.slot, e.checkout, StackTrace::capture());
  }
}

void PoolTracer::publish_stack(std::uint32_t slot, std::uint64_t checkout,
                               const StackTrace& trace) noexcept {
  SlotStack& s = stacks_[slot];
  s.checkout.store(0, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  const auto frames = trace.frames();
  for (std::size_t i = 0; i < frames.size(); ++i) {
    s.frames[i].store(frames[i], std::memory_order_relaxed);
  }
  s.size.store(static_cast<std::uint32_t>(frames.size()), std::memory_order_relaxed);
  s.checkout.store(checkout, std::memory_order_release);
}

StackTrace PoolTracer::stack(std::uint32_t slot, std::uint64_t checkout) const {
  if (stacks_ == nullptr || slot >= slots_) return {};
  const SlotStack& s = stacks_[slot];
  if (s.checkout.load(std::memory_order_acquire) != checkout) return {};
  std::array<std::uintptr_t, StackTrace::kMaxFrames> frames{};
  const std::size_t size =
      std::min<std::size_t>(s.size.load(std::memory_order_relaxed), frames.size());
  for (std::size_t i = 0; i < size; ++i) frames[i] = s.frames[i].load(std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_acquire);
  if (s.checkout.load(std::memory_order_relaxed) != checkout) return {};
  return StackTrace::from_frames({frames.data(), size});
}

void PoolTracer::on_reuse(const ReuseEvent& e) { bump(registry().counters(e.site).reuses); }

// The hot path: every lease that comes back. The checkout is counted here,
// with its hold time, by the thread that returns it, and judged by the churn
// rule (see tracer.h): it continues this thread's loop at the site if it
// went out before the deadline the thread's previous lease from the site set
// when it came back (none if that lease served nested acquires). True asks
// for on_checkin(), where what is rare is done.
bool PoolTracer::on_checkin_fast(source_location site, std::chrono::nanoseconds held,
                                 std::int64_t checkout_ns, std::uint64_t reuses) {
  const SiteCacheEntry* cached = SiteRegistry::cached(registry_id_, site);
  if (cached == nullptr) [[unlikely]] {
    return checkin_uncached(site, held.count(), checkout_ns, reuses);
  }
  return count_checkin(*cached->counters, held.count(), checkout_ns, reuses);
}

// Signed: a negative hold (clocks of two cores disagreeing) costs the sum a
// few nanoseconds and can neither raise the maximum nor continue a loop.
inline bool PoolTracer::count_checkin(SiteCounters& c, std::int64_t held, std::int64_t checkout_ns,
                                      std::uint64_t reuses) {
  // The churn rule before the counters: GCC then needs no register copy of
  // checkout_ns (docs/benchmarks.md counts the instructions).
  const std::uint64_t run = checkout_ns <= c.loop_until_ns ? c.run + 1 : 1;
  c.run = run;
  if (reuses == 0) [[likely]] {
    c.loop_until_ns = checkout_ns + held + std::min(held >> 3, churn_gap_ns_);
  } else {
    c.loop_until_ns = SiteCounters::kNoLoop;
  }
  bump(c.checkouts);
  bump(c.hold_ns, static_cast<std::uint64_t>(held));
  if (held > static_cast<std::int64_t>(c.max_hold_ns.load(std::memory_order_relaxed))) {
    c.max_hold_ns.store(static_cast<std::uint64_t>(held), std::memory_order_relaxed);
  }
  // One compare for both rare cases: rare_at_ is 0 while a leak is reported.
  return run >= rare_at_.load(std::memory_order_relaxed);
}

bool PoolTracer::checkin_uncached(source_location site, std::int64_t held, std::int64_t checkout_ns,
                                  std::uint64_t reuses) {
  return count_checkin(registry_->counters(site), held, checkout_ns, reuses);
}

// The rare part of a checkin, after on_checkin_fast() counted it and asked
// for the details: a loop noted, a reported lease's return logged.
void PoolTracer::on_checkin(const CheckinEvent& e) {
  const Clock::time_point start = Clock::now();
  SiteCounters& c = registry_->counters(e.site);  // in the thread's cache: just counted
  const std::uint64_t run = c.run;
  if (run >= churn_loop_) loop_seen(c, e, run);
  if (leaks_out_.load(std::memory_order_relaxed) != 0) lease_returned(e);
  // The time spent here (a loop noted, a return logged) is the tracer's,
  // not the loop's: it does not count against the next checkout's gap.
  if (c.loop_until_ns != SiteCounters::kNoLoop) {
    c.loop_until_ns += std::chrono::nanoseconds(Clock::now() - start).count();
  }
}

void PoolTracer::loop_seen(SiteCounters& c, const CheckinEvent& e, std::uint64_t run) noexcept {
  c.last_loop.store(run, std::memory_order_relaxed);
  raise_max(c.longest_loop, run);
  if (run != churn_loop_) return;  // a loop already counted, going on
  bump(c.loops);
  try {
    registry_->note_loop(e.site, e.thread, stack(e.slot, e.checkout));
  } catch (...) {
    // Out of memory: the report goes without this loop's details.
  }
}

void PoolTracer::on_close(const CloseEvent& e) {
  spdlog::logger& log = state_->logger();
  if (log.should_log(state_->config().session_level)) {
    log.log(state_->config().session_level,
            "Database session closed (id={}, pool={}, reason={}, age={})", e.connection_id,
            log_text(pool_name_), to_string(e.reason), duration_text(e.age));
  }
}

}  // namespace poolscope::tracing::detail
