#include "poolscope/cache/ttl_cache.h"

#include <bit>
#include <stdexcept>
#include <string>

#include "poolscope/base/config_check.h"

namespace poolscope::cache {
void TtlCacheConfig::validate() const {
  constexpr std::string_view kConfig = "TtlCacheConfig";
  poolscope::detail::check_label_name(kConfig, "name", name);
  poolscope::detail::check_not_negative(kConfig, "ttl", ttl);
  poolscope::detail::check_at_least(kConfig, "max_entries", max_entries, 1);
  if (shards < 1 || shards > 1024 || !std::has_single_bit(shards)) {
    poolscope::detail::invalid_field(kConfig, "shards", "must be a power of two from 1 to 1024",
                                     std::to_string(shards));
  }
}

}  // namespace poolscope::cache
