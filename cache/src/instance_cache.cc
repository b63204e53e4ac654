#include "poolscope/cache/instance_cache.h"

#include "poolscope/base/config_check.h"

namespace poolscope::cache {

void InstanceCacheConfig::validate() const {
  constexpr std::string_view kConfig = "InstanceCacheConfig";
  poolscope::detail::check_label_name(kConfig, "name", name);
  poolscope::detail::check_at_least(kConfig, "max_instances", max_instances, 1);
  poolscope::detail::check_not_negative(kConfig, "ttl", ttl);
}

}  // namespace poolscope::cache
