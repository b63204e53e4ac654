#include "poolscope/cache/instance_cache.h"

#include "config_check.h"

namespace poolscope::cache {

void InstanceCacheConfig::validate() const {
  constexpr std::string_view kConfig = "InstanceCacheConfig";
  detail::check_name(kConfig, "name", name);
  detail::check_positive(kConfig, "max_instances", max_instances);
  detail::check_ttl(kConfig, "ttl", ttl);
}

}  // namespace poolscope::cache
