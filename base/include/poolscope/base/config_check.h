// Checks every poolscope config struct shares. Each config validates its own
// fields and names them itself; the message always reads
// "<Config>.<field> <rule> (got <value>)", e.g.
// "PoolConfig.pool_size must be at least 1 (got 0)".

#pragma once

#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

namespace poolscope::detail {

// Throws std::invalid_argument: "<config>.<field> <rule> (got <got>)".
[[noreturn]] inline void invalid_field(std::string_view config, std::string_view field,
                                       std::string_view rule, std::string_view got) {
  throw std::invalid_argument(std::string(config) + "." + std::string(field) + " " +
                              std::string(rule) + " (got " + std::string(got) + ")");
}

// "250 ms".
inline std::string ms_text(std::chrono::milliseconds d) {
  return std::to_string(d.count()) + " ms";
}

// A label as stats, logs and metric labels carry it (a pool's or a cache's
// name): 1 to 64 of A-Z a-z 0-9 _ . : -.
inline bool is_label_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 64) return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

inline void check_label_name(std::string_view config, std::string_view field,
                             std::string_view name) {
  if (!is_label_name(name)) {
    invalid_field(config, field, "must be 1 to 64 of A-Z a-z 0-9 _ . : -",
                  "'" + std::string(name.substr(0, 80)) + "'");
  }
}

inline void check_not_negative(std::string_view config, std::string_view field,
                               std::chrono::milliseconds d) {
  if (d.count() < 0) invalid_field(config, field, "must not be negative", ms_text(d));
}

inline void check_positive(std::string_view config, std::string_view field,
                           std::chrono::milliseconds d) {
  if (d.count() <= 0) invalid_field(config, field, "must be positive", ms_text(d));
}

inline void check_at_least(std::string_view config, std::string_view field, std::size_t value,
                           std::size_t least) {
  if (value < least) {
    invalid_field(config, field, "must be at least " + std::to_string(least),
                  std::to_string(value));
  }
}

inline void check_at_most(std::string_view config, std::string_view field, std::size_t value,
                          std::size_t most) {
  if (value > most) {
    invalid_field(config, field, "must be at most " + std::to_string(most), std::to_string(value));
  }
}

}  // namespace poolscope::detail
