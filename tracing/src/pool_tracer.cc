#include "pool_tracer.h"

#include <spdlog/spdlog.h>

#include <array>

#include "poolscope/pool/site.h"
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

PoolTracer::PoolTracer(std::shared_ptr<TracerState> state, Pool& pool)
    : state_(std::move(state)),
      pool_name_(pool.name()),
      url_(pool.redacted_url()),
      slots_(pool.config().pool_size + pool.config().max_overflow),
      stacks_(state_->config().capture_stacks ? new SlotStack[slots_] : nullptr),
      registry_(std::make_shared<SiteRegistry>(state_->config().max_sites)) {}

PoolTracer::~PoolTracer() = default;

std::string PoolTracer::called_from(const std::source_location* site) const {
  if (site == nullptr) return "[Called from: poolscope housekeeping (min_idle)]";
  std::string out = "[Called from: " + format_site(*site);
  if (state_->config().capture_stacks) {
    for (const std::string& caller :
         StackTrace::capture().callers_of(*site, state_->config().stack_depth)) {
      out += " <- " + caller;
    }
  }
  return out + "]";
}

unsigned PoolTracer::events() const {
  return stacks_ != nullptr ? kAllEvents : kAllEvents & ~kCheckoutEvents;
}

void PoolTracer::on_connect(const ConnectEvent& e) {
  if (e.site != nullptr) registry().add_opened(registry().lookup(*e.site).index);
  spdlog::logger& log = state_->logger();
  if (log.should_log(state_->config().session_level)) {
    log.log(state_->config().session_level, "Database session created (id={}, pool={}, url={}) {}",
            e.connection_id, pool_name_, url_, called_from(e.site));
  }
}

void PoolTracer::on_connect_failed(const ConnectFailedEvent& e) {
  state_->logger().warn("Database session could not be opened (pool={}, url={}) {}: {}",
                        pool_name_, url_, called_from(e.site), e.error);
}

void PoolTracer::on_checkout(const CheckoutEvent& e) {
  if (stacks_ != nullptr && e.slot < slots_) {
    const StackTrace trace = StackTrace::capture();
    SlotStack& s = stacks_[e.slot];
    s.checkout.store(0, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    const auto frames = trace.frames();
    for (std::size_t i = 0; i < frames.size(); ++i) {
      s.frames[i].store(frames[i], std::memory_order_relaxed);
    }
    s.size.store(static_cast<std::uint32_t>(frames.size()), std::memory_order_relaxed);
    s.checkout.store(e.checkout, std::memory_order_release);
  }
}

StackTrace PoolTracer::stack(std::uint32_t slot, std::uint64_t checkout) const {
  if (stacks_ == nullptr || slot >= slots_) return {};
  const SlotStack& s = stacks_[slot];
  if (s.checkout.load(std::memory_order_acquire) != checkout) return {};
  std::array<std::uintptr_t, StackTrace::kMaxFrames> frames{};
  const std::size_t size = std::min<std::size_t>(s.size.load(std::memory_order_relaxed), frames.size());
  for (std::size_t i = 0; i < size; ++i) frames[i] = s.frames[i].load(std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_acquire);
  if (s.checkout.load(std::memory_order_relaxed) != checkout) return {};
  return StackTrace::from_frames({frames.data(), size});
}

void PoolTracer::on_reuse(const ReuseEvent& e) {
  bump(registry().lookup(e.site).counters->reuses);
}

void PoolTracer::on_checkin(const CheckinEvent& e) {
  SiteCounters& c = *registry().lookup(e.site).counters;
  const auto held = static_cast<std::uint64_t>(std::max<std::int64_t>(e.held.count(), 0));
  bump(c.acquires);
  bump(c.hold_ns, held);
  raise_max(c.max_hold_ns, held);
  state_->lease_returned(this, e.slot, e.checkout, e.held);
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
  if (!e.leases.empty()) {
    std::string text = "Pool " + pool_name_ + " destroyed with " + std::to_string(e.leases.size()) +
                       (e.leases.size() == 1 ? " lease" : " leases") + " still out:";
    for (const LeaseInfo& lease : e.leases) {
      text += "\n    connection " + std::to_string(lease.connection_id) + " held for " +
              duration_text(lease.held) + " by " + format_site(lease.site) + " on thread " +
              std::to_string(lease.thread);
    }
    state_->logger().warn("{}", text);
  }
  state_->pool_closed(this);
}

}  // namespace poolscope::tracing::detail
