#include "poolscope/pool/pool_config.h"

#include <climits>
#include <stdexcept>
#include <string>

#include "poolscope/pool/pool_stats.h"

namespace poolscope {
namespace {

constexpr std::size_t kMaxConnections = 10'000;

[[noreturn]] void invalid(std::string_view field, std::string_view rule, const std::string& got) {
  throw std::invalid_argument("PoolConfig." + std::string(field) + " " + std::string(rule) +
                              " (got " + got + ")");
}

std::string ms(std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; }

void require_not_negative(std::string_view field, std::chrono::milliseconds d) {
  if (d.count() < 0) invalid(field, "must not be negative", ms(d));
}

void require_positive(std::string_view field, std::chrono::milliseconds d) {
  if (d.count() <= 0) invalid(field, "must be positive", ms(d));
}

void require_at_most(std::string_view field, std::chrono::milliseconds d,
                     std::chrono::milliseconds limit, std::string_view why) {
  if (d > limit) {
    invalid(field, "must be at most " + ms(limit) + " (" + std::string(why) + ")", ms(d));
  }
}

}  // namespace

void PoolConfig::validate() const {
  if (url.empty()) invalid("url", "must name a database", "an empty string");
  if (name.empty() || name.size() > 64 ||
      name.find_first_not_of(
          "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-") !=
          std::string::npos) {
    invalid("name", "must be 1 to 64 of A-Z a-z 0-9 _ . : -", "'" + name + "'");
  }
  if (pool_size < 1) invalid("pool_size", "must be at least 1", std::to_string(pool_size));
  if (pool_size > kMaxConnections) {
    invalid("pool_size", "must be at most 10000", std::to_string(pool_size));
  }
  if (max_overflow > kMaxConnections - pool_size) {
    invalid("max_overflow", "must keep pool_size + max_overflow at most 10000",
            std::to_string(max_overflow));
  }
  require_positive("checkout_timeout", checkout_timeout);
  require_not_negative("max_lifetime", max_lifetime);
  require_not_negative("idle_timeout", idle_timeout);
  if (min_idle > pool_size) {
    invalid("min_idle", "must be at most pool_size (" + std::to_string(pool_size) + ")",
            std::to_string(min_idle));
  }
  require_not_negative("validation_interval", validation_interval);
  if (reset_on_return != ResetOnReturn::kRollback && reset_on_return != ResetOnReturn::kNone) {
    invalid("reset_on_return", "must be kRollback or kNone",
            std::to_string(static_cast<int>(reset_on_return)));
  }
  require_positive("connect_timeout", connect_timeout);
  require_at_most("connect_timeout", connect_timeout, std::chrono::seconds(INT_MAX),
                  "libpq takes whole seconds as an int");
  require_not_negative("sqlite_busy_timeout", sqlite_busy_timeout);
  require_at_most("sqlite_busy_timeout", sqlite_busy_timeout, std::chrono::seconds(INT_MAX / 1000),
                  "SQLite takes milliseconds as an int");
  require_positive("housekeeping_interval", housekeeping_interval);
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
