// poolscope-load built without poolscope::cache_redis (POOLSCOPE_WITH_REDIS=OFF):
// --redis is refused with a reason, and nothing else here is ever reached.

#include <stdexcept>

#include "redis_setup.h"

namespace poolscope::load {
namespace {
constexpr const char* kWithout =
    "--redis: this poolscope-load was built without Redis (POOLSCOPE_WITH_REDIS=OFF)";
}

RunRedis::RunRedis(const std::string&, const std::string&, std::shared_ptr<spdlog::logger>) {
  throw std::logic_error(kWithout);
}
RunRedis::~RunRedis() = default;
std::shared_ptr<cache::SettingsTier> RunRedis::settings_tier() const { return nullptr; }
Subscription RunRedis::attach(cache::InstanceCache<int, const Account>&) { return {}; }
void RunRedis::add_to(exporters::MetricsCollector&, const std::string&) const {}
RedisFigures RunRedis::figures() const { return {}; }
std::string redis_url_problem(const std::string&) { return kWithout; }
std::string redact_redis_url(const std::string&) { return "(Redis URL)"; }

}  // namespace poolscope::load
