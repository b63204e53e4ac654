#include "pool_tracer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <utility>

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

}  // namespace

PoolTracer::PoolTracer(std::shared_ptr<TracerState> state, Pool& pool)
    : state_(std::move(state)),
      pool_name_(pool.name()),
      url_(pool.redacted_url()),
      slots_(pool.config().pool_size + pool.config().max_overflow),
      stacks_(state_->config().capture_stacks ? new SlotStack[slots_] : nullptr),
      registry_(std::make_shared<SiteRegistry>(state_->config().max_sites)),
      reported_(new std::atomic<std::uint64_t>[slots_]),
      scanned_(slots_) {
  for (std::size_t i = 0; i < slots_; ++i) reported_[i].store(0, std::memory_order_relaxed);
}

PoolTracer::~PoolTracer() = default;

std::string PoolTracer::called_from(const source_location& site, const StackTrace& trace) const {
  if (!has_site(site)) return "[Called from: poolscope housekeeping (min_idle)]";
  std::string out = "[Called from: " + format_site(site);
  if (!trace.empty()) {
    for (const std::string& caller : trace.callers_of(site, state_->config().stack_depth)) {
      out += " <- " + caller;
    }
  }
  return out + "]";
}

unsigned PoolTracer::events() const {
  return stacks_ != nullptr ? kAllEvents : kAllEvents & ~kCheckoutEvents;
}

void PoolTracer::on_connect(const ConnectEvent& e) {
  if (has_site(e.site)) registry().add_opened(registry().lookup(e.site).index);
  StackTrace trace;
  if (stacks_ != nullptr && has_site(e.site)) {
    trace = StackTrace::capture();
    t_connect_stack = {registry_->id(), e.connection_id, trace};
  }
  spdlog::logger& log = state_->logger();
  if (log.should_log(state_->config().session_level)) {
    // Symbolized only here, when the line is written.
    log.log(state_->config().session_level, "Database session created (id={}, pool={}, url={}) {}",
            e.connection_id, pool_name_, url_, called_from(e.site, trace));
  }
}

void PoolTracer::on_connect_failed(const ConnectFailedEvent& e) {
  spdlog::logger& log = state_->logger();
  if (!log.should_log(spdlog::level::warn)) return;
  const StackTrace trace =
      stacks_ != nullptr && has_site(e.site) ? StackTrace::capture() : StackTrace();
  log.warn("Database session could not be opened (pool={}, url={}) {}: {}", pool_name_, url_,
           called_from(e.site, trace), e.error);
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

void PoolTracer::on_reuse(const ReuseEvent& e) { bump(registry().lookup(e.site).counters->reuses); }

void PoolTracer::on_checkin(const CheckinEvent& e) {
  SiteCounters& c = *registry().lookup(e.site).counters;
  const auto held = static_cast<std::uint64_t>(std::max<std::int64_t>(e.held.count(), 0));
  bump(c.acquires);
  bump(c.hold_ns, held);
  raise_max(c.max_hold_ns, held);
  // Only this slot's record: a relaxed load, equal only for a reported lease.
  if (e.slot < slots_ && reported_[e.slot].load(std::memory_order_relaxed) == e.checkout)
      [[unlikely]] {
    lease_returned(e);
  }
}

void PoolTracer::lease_returned(const CheckinEvent& e) noexcept {
  std::uint64_t expected = e.checkout;
  if (!reported_[e.slot].compare_exchange_strong(expected, 0, std::memory_order_acq_rel,
                                                 std::memory_order_relaxed)) {
    return;  // the scan logged it
  }
  state_->leaks_returned.fetch_add(1, std::memory_order_relaxed);
  try {
    state_->logger().info(
        "Previously reported leaked lease was returned: pool={}, site {}, held for {}", pool_name_,
        format_site(e.site), duration_text(e.held));
  } catch (...) {
    // A log line that cannot be written is dropped, nothing else.
  }
}

std::string PoolTracer::leak_text(const LeaseInfo& lease,
                                  std::chrono::nanoseconds threshold) const {
  std::string text = "Possible session leak: connection " + std::to_string(lease.connection_id) +
                     " (pool=" + pool_name_ + ") held for " + duration_text(lease.held) + " by " +
                     format_site(lease.site) + " on thread " + std::to_string(lease.thread);
  if (std::string name = thread_name(lease.thread); !name.empty()) text += " (" + name + ")";
  text += ", past leak_threshold " + duration_text(threshold);
  const StackTrace stack = this->stack(lease.slot, lease.checkout);
  for (const std::string& caller : stack.callers_of(lease.site, state_->config().stack_depth)) {
    text += "\n    called from " + caller;
  }
  return text;
}

void PoolTracer::scan_leaks(std::span<const LeaseInfo> leases,
                            std::chrono::nanoseconds threshold) noexcept {
  poolscope::detail::MutexLock lock(scan_mu_);
  spdlog::logger& log = state_->logger();

  // Reported leases no longer out: log the return their checkin did not.
  for (std::size_t slot = 0; slot < slots_; ++slot) {
    Reported& r = scanned_[slot];
    if (r.checkout == 0) continue;
    const auto out = std::find_if(leases.begin(), leases.end(), [&](const LeaseInfo& l) {
      return l.slot == slot && l.checkout == r.checkout;
    });
    if (out != leases.end()) {
      r.held = out->held;
      continue;
    }
    const Reported back = std::exchange(r, Reported{});
    std::uint64_t expected = back.checkout;
    if (!reported_[slot].compare_exchange_strong(expected, 0, std::memory_order_acq_rel,
                                                 std::memory_order_relaxed)) {
      continue;  // its checkin logged it
    }
    state_->leaks_returned.fetch_add(1, std::memory_order_relaxed);
    try {
      log.info(
          "Previously reported leaked lease was returned: pool={}, site {}, held for more than {}",
          pool_name_, format_site(back.site), duration_text(back.held));
    } catch (...) {
    }
  }

  // Leases past the threshold not reported yet.
  for (const LeaseInfo& lease : leases) {  // longest held first
    if (lease.held < threshold) break;
    if (lease.slot >= slots_ || scanned_[lease.slot].checkout == lease.checkout) continue;
    std::string text;
    std::uint32_t site = 0;
    try {
      text = leak_text(lease, threshold);
      site = registry().index_of(lease.site);
    } catch (...) {
      continue;  // nothing recorded: the next scan tries again
    }
    // Recorded and counted before the line is written, so a reader who sees
    // the line sees the counts; a checkin meanwhile sees kPending and leaves
    // the return to the next scan.
    reported_[lease.slot].store(lease.checkout | kPending, std::memory_order_relaxed);
    scanned_[lease.slot] = Reported{lease.checkout, lease.site, lease.held};
    registry().add_leak(site);
    state_->leaks_reported.fetch_add(1, std::memory_order_relaxed);
    try {
      log.warn("{}", text);
    } catch (...) {
    }
    reported_[lease.slot].store(lease.checkout, std::memory_order_release);
  }
}

void PoolTracer::on_close(const CloseEvent& e) {
  spdlog::logger& log = state_->logger();
  if (log.should_log(state_->config().session_level)) {
    log.log(state_->config().session_level,
            "Database session closed (id={}, pool={}, reason={}, age={})", e.connection_id,
            pool_name_, to_string(e.reason), duration_text(e.age));
  }
}

void PoolTracer::on_timeout(const TimeoutEvent& e) {
  registry().add_timeout(registry().lookup(e.site).index);
  state_->logger().warn("Checkout timed out after {} (pool={}) [Called from: {}]",
                        duration_text(e.waited), pool_name_, format_site(e.site));
}

void PoolTracer::on_shutdown(const ShutdownEvent& e) {
  // First, so the pool is forgotten whatever happens below: a scan must
  // never reach a destroyed pool.
  state_->pool_closed(this);
  if (e.leases.empty()) return;
  try {
    std::string text = "Pool " + pool_name_ + " destroyed with " + std::to_string(e.leases.size()) +
                       (e.leases.size() == 1 ? " lease" : " leases") + " still out:";
    for (const LeaseInfo& lease : e.leases) {
      text += "\n    connection " + std::to_string(lease.connection_id) + " held for " +
              duration_text(lease.held) + " by " + format_site(lease.site) + " on thread " +
              std::to_string(lease.thread);
    }
    state_->logger().warn("{}", text);
  } catch (...) {
    // The report is lost, nothing else.
  }
}

}  // namespace poolscope::tracing::detail
