#include "poolscope/cache/ttl_cache.h"

#include <bit>
#include <stdexcept>
#include <string>

#include "config_check.h"

namespace poolscope::cache {
namespace detail {

void invalid_field(std::string_view config, std::string_view field, std::string_view rule,
                   std::string_view got) {
  std::string message(config);
  message.append(".").append(field).append(" ").append(rule).append(" (got ").append(got).append(
      ")");
  throw std::invalid_argument(message);
}

void check_name(std::string_view config, std::string_view field, const std::string& name) {
  if (name.empty() || name.size() > 64 ||
      name.find_first_not_of(
          "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-") !=
          std::string::npos) {
    invalid_field(config, field, "must be 1 to 64 of A-Z a-z 0-9 _ . : -", "'" + name + "'");
  }
}

void check_ttl(std::string_view config, std::string_view field, std::chrono::milliseconds ttl) {
  if (ttl.count() < 0)
    invalid_field(config, field, "must not be negative", std::to_string(ttl.count()) + " ms");
}

void check_positive(std::string_view config, std::string_view field, std::size_t value) {
  if (value < 1) invalid_field(config, field, "must be at least 1", std::to_string(value));
}

}  // namespace detail

void TtlCacheConfig::validate() const {
  constexpr std::string_view kConfig = "TtlCacheConfig";
  detail::check_name(kConfig, "name", name);
  detail::check_ttl(kConfig, "ttl", ttl);
  detail::check_positive(kConfig, "max_entries", max_entries);
  if (shards < 1 || shards > 1024 || !std::has_single_bit(shards)) {
    detail::invalid_field(kConfig, "shards", "must be a power of two from 1 to 1024",
                          std::to_string(shards));
  }
}

}  // namespace poolscope::cache
