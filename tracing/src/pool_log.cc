// The PoolTracer's lines about the pool's life (start, configuration,
// statistics, shutdown), the database's notices, and checkout timeouts: the
// first of a storm at once, then one summary per timeout_log_interval, so an
// outage shows as a handful of lines rather than one per failed checkout.

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "pool_tracer.h"
#include "poolscope/base/log_text.h"
#include "poolscope/base/site.h"
#include "tracer_state.h"

namespace poolscope::tracing::detail {
namespace {

const char* yes_no(bool b) { return b ? "true" : "false"; }

// A database's severity, as spdlog's: FATAL and PANIC (the connection is
// ending) and ERROR as errors, WARNING as a warning, DEBUG* as debug, the
// rest (NOTICE, INFO, LOG) as info.
spdlog::level::level_enum notice_level(std::string_view severity) {
  if (severity == "FATAL" || severity == "PANIC" || severity == "ERROR") {
    return spdlog::level::err;
  }
  if (severity == "WARNING") return spdlog::level::warn;
  if (severity.starts_with("DEBUG")) return spdlog::level::debug;
  return spdlog::level::info;
}

}  // namespace

void PoolTracer::log_start(const Pool& pool) const {
  spdlog::logger& log = state_->logger();
  const PoolConfig& c = pool.config();
  const spdlog::level::level_enum level = state_->config().session_level;
  try {
    if (log.should_log(level)) {
      log.log(level,
              "Pool {} started (url={}, pool_size={}, max_overflow={}, min_idle={}, "
              "checkout_timeout={})",
              log_text(pool_name_), log_text(url_), c.pool_size, c.max_overflow, c.min_idle,
              duration_text(c.checkout_timeout));
    }
    if (log.should_log(spdlog::level::debug)) {
      // Every field, the URL redacted (the only one that can hold a password).
      log.debug(
          "Pool {} configuration: url={}, name={}, pool_size={}, max_overflow={}, "
          "checkout_timeout={}, max_lifetime={}, idle_timeout={}, min_idle={}, "
          "validate_on_checkout={}, validation_interval={}, validation_query='{}', "
          "reset_on_return={}, connect_timeout={}, sqlite_busy_timeout={}, "
          "transaction_pooler={}, housekeeping_interval={}",
          log_text(pool_name_), log_text(url_), log_text(c.name), c.pool_size, c.max_overflow,
          duration_text(c.checkout_timeout), duration_text(c.max_lifetime),
          duration_text(c.idle_timeout), c.min_idle, yes_no(c.validate_on_checkout),
          duration_text(c.validation_interval), log_text(c.validation_query),
          c.reset_on_return == ResetOnReturn::kRollback ? "rollback" : "none",
          duration_text(c.connect_timeout), duration_text(c.sqlite_busy_timeout),
          yes_no(c.transaction_pooler), duration_text(c.housekeeping_interval));
    }
  } catch (...) {
    // A line that cannot be written is dropped, nothing else.
  }
}

void PoolTracer::log_stats(const PoolStats& s) const {
  try {
    state_->logger().debug("Pool {} stats (total={}, active={}, idle={}, waiting={})",
                           log_text(pool_name_), s.open, s.active, s.idle, s.pending);
  } catch (...) {
  }
}

void PoolTracer::on_notice(const NoticeEvent& e) {
  state_->logger().log(notice_level(e.severity), "Database {} (pool={}, id={}): {}",
                       log_text(e.severity), log_text(pool_name_), e.connection_id,
                       log_text(e.message));
}

void PoolTracer::on_timeout(const TimeoutEvent& e) {
  const std::uint32_t index = registry().index_of(e.site);
  registry().add_timeout(index);
  bool first = false;
  {
    poolscope::detail::MutexLock lock(timeout_mu_);
    if (!storm_) {
      storm_ = first = true;
      since_ = Clock::now();
    } else {
      ++timeouts_;
      ++timeouts_by_site_[index];
    }
  }
  if (!first) return;
  state_->timeout_lines.fetch_add(1, std::memory_order_relaxed);
  state_->logger().warn(
      "Checkout timed out after {} (pool={}) [Called from: {}]; further timeouts are summed up "
      "every {}",
      duration_text(e.waited), log_text(pool_name_), format_site(e.site),
      duration_text(state_->config().timeout_log_interval));
}

void PoolTracer::flush_timeouts(Clock::time_point now, bool final) noexcept {
  std::uint64_t count = 0;
  std::map<std::uint32_t, std::uint64_t> by_site;
  Clock::duration span{};
  {
    poolscope::detail::MutexLock lock(timeout_mu_);
    if (!storm_) return;
    span = now - since_;
    if (!final && span < state_->config().timeout_log_interval) return;
    count = std::exchange(timeouts_, 0);
    by_site.swap(timeouts_by_site_);
    since_ = now;
    // An interval without a timeout ends the storm: the next one is logged at once.
    if (count == 0 || final) storm_ = false;
  }
  if (count == 0) return;
  try {
    std::vector<std::pair<std::uint64_t, std::uint32_t>> top;  // (count, site)
    for (const auto& [site, n] : by_site) top.emplace_back(n, site);
    std::sort(top.begin(), top.end(), std::greater<>());
    std::string sites;
    for (std::size_t i = 0; i < top.size() && i < 3; ++i) {
      sites += (i == 0 ? "" : ", ") + registry().name(top[i].second) + " (" +
               std::to_string(top[i].first) + ")";
    }
    if (top.size() > 3) sites += ", " + std::to_string(top.size() - 3) + " more";
    state_->timeout_lines.fetch_add(1, std::memory_order_relaxed);
    state_->logger().warn("{} checkout timeouts in the last {} (pool={}), top sites: {}", count,
                          duration_text(std::chrono::duration_cast<std::chrono::nanoseconds>(span)),
                          log_text(pool_name_), sites);
  } catch (...) {
  }
}

void PoolTracer::on_shutdown(const ShutdownEvent& e) {
  // First, so the pool is forgotten whatever happens below: a scan must
  // never reach a destroyed pool.
  state_->pool_closed(this);
  flush_timeouts(Clock::now(), /*final=*/true);
  spdlog::logger& log = state_->logger();
  try {
    const spdlog::level::level_enum level = state_->config().session_level;
    if (log.should_log(level)) {
      std::uint64_t checkouts = 0, opened = 0, timeouts = 0;
      for (const SiteStats& s : registry().snapshot()) {
        checkouts += s.acquires;
        opened += s.connections_opened;
        timeouts += s.timeouts;
      }
      log.log(level, "Pool {} shut down ({} checkouts traced, {} connections opened, {} timeouts)",
              log_text(pool_name_), checkouts, opened, timeouts);
    }
    if (e.leases.empty()) return;
    std::string text = "Pool " + log_text(pool_name_) + " destroyed with " +
                       std::to_string(e.leases.size()) +
                       (e.leases.size() == 1 ? " lease" : " leases") + " still out: ";
    for (std::size_t i = 0; i < e.leases.size(); ++i) {
      const LeaseInfo& lease = e.leases[i];
      text += (i == 0 ? "" : "; ") + std::string("connection ") +
              std::to_string(lease.connection_id) + " held for " + duration_text(lease.held) +
              " by " + format_site(lease.site) + " on thread " + std::to_string(lease.thread);
    }
    log.warn("{}", text);
  } catch (...) {
    // The report is lost, nothing else.
  }
}

}  // namespace poolscope::tracing::detail
