#include "poolscope/pool/pool_config.h"

#include <climits>
#include <stdexcept>
#include <string>

#include "poolscope/base/config_check.h"
#include "poolscope/pool/pool_stats.h"

namespace poolscope {
namespace {

constexpr std::size_t kMaxConnections = 10'000;

[[noreturn]] void invalid(std::string_view field, std::string_view rule, const std::string& got) {
  detail::invalid_field("PoolConfig", field, rule, got);
}

void require_at_most(std::string_view field, std::chrono::milliseconds d,
                     std::chrono::milliseconds limit, std::string_view why) {
  if (d > limit) {
    invalid(field, "must be at most " + detail::ms_text(limit) + " (" + std::string(why) + ")",
            detail::ms_text(d));
  }
}

}  // namespace

void PoolConfig::validate() const {
  if (url.empty()) invalid("url", "must name a database", "an empty string");
  detail::check_label_name("PoolConfig", "name", name);
  if (pool_size < 1) invalid("pool_size", "must be at least 1", std::to_string(pool_size));
  if (pool_size > kMaxConnections) {
    invalid("pool_size", "must be at most 10000", std::to_string(pool_size));
  }
  if (max_overflow > kMaxConnections - pool_size) {
    invalid("max_overflow", "must keep pool_size + max_overflow at most 10000",
            std::to_string(max_overflow));
  }
  detail::check_positive("PoolConfig", "checkout_timeout", checkout_timeout);
  detail::check_not_negative("PoolConfig", "max_lifetime", max_lifetime);
  detail::check_not_negative("PoolConfig", "idle_timeout", idle_timeout);
  if (min_idle > pool_size) {
    invalid("min_idle", "must be at most pool_size (" + std::to_string(pool_size) + ")",
            std::to_string(min_idle));
  }
  detail::check_not_negative("PoolConfig", "validation_interval", validation_interval);
  if (reset_on_return != ResetOnReturn::kRollback && reset_on_return != ResetOnReturn::kNone) {
    invalid("reset_on_return", "must be kRollback or kNone",
            std::to_string(static_cast<int>(reset_on_return)));
  }
  detail::check_positive("PoolConfig", "connect_timeout", connect_timeout);
  require_at_most("connect_timeout", connect_timeout, std::chrono::seconds(INT_MAX),
                  "libpq takes whole seconds as an int");
  detail::check_not_negative("PoolConfig", "sqlite_busy_timeout", sqlite_busy_timeout);
  require_at_most("sqlite_busy_timeout", sqlite_busy_timeout, std::chrono::seconds(INT_MAX / 1000),
                  "SQLite takes milliseconds as an int");
  detail::check_positive("PoolConfig", "housekeeping_interval", housekeeping_interval);
  detail::check_at_most("PoolConfig", "statement_cache_size", statement_cache_size, 100'000);
}

std::string_view to_string(CloseReason reason) noexcept {
  switch (reason) {
    case CloseReason::kMaxLifetime:
      return "max_lifetime";
    case CloseReason::kIdleTimeout:
      return "idle_timeout";
    case CloseReason::kBroken:
      return "broken";
    case CloseReason::kValidationFailed:
      return "validation_failed";
    case CloseReason::kOverflow:
      return "overflow";
    case CloseReason::kShutdown:
      return "shutdown";
  }
  return "unknown";
}

std::uint64_t PoolStats::closed_total() const noexcept {
  std::uint64_t total = 0;
  for (std::uint64_t n : closed) total += n;
  return total;
}

}  // namespace poolscope
