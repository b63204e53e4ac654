#include <bit>
#include <stdexcept>
#include <string>

#include "poolscope/cache/ttl_cache.h"

namespace poolscope::cache {
namespace {

[[noreturn]] void invalid(std::string_view field, std::string_view rule, const std::string& got) {
  throw std::invalid_argument("TtlCacheConfig." + std::string(field) + " " + std::string(rule) +
                              " (got " + got + ")");
}

}  // namespace

void TtlCacheConfig::validate() const {
  if (name.empty() || name.size() > 64 ||
      name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-") !=
          std::string::npos) {
    invalid("name", "must be 1 to 64 of A-Z a-z 0-9 _ . : -", "'" + name + "'");
  }
  if (ttl.count() < 0) invalid("ttl", "must not be negative", std::to_string(ttl.count()) + " ms");
  if (max_entries < 1) invalid("max_entries", "must be at least 1", std::to_string(max_entries));
  if (shards < 1 || shards > 1024 || !std::has_single_bit(shards)) {
    invalid("shards", "must be a power of two from 1 to 1024", std::to_string(shards));
  }
}

}  // namespace poolscope::cache
