// Checks the cache configs share (TtlCacheConfig, SettingsCacheConfig,
// InstanceCacheConfig): each config validates its own fields and names them
// itself, as "<Config>.<field> <rule> (got <value>)".

#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

namespace poolscope::cache::detail {

// Throws std::invalid_argument: "<config>.<field> <rule> (got <got>)".
[[noreturn]] void invalid_field(std::string_view config, std::string_view field,
                                std::string_view rule, std::string_view got);

// A cache's name, as stats and metric labels carry it: 1 to 64 of
// A-Z a-z 0-9 _ . : -.
void check_name(std::string_view config, std::string_view field, const std::string& name);

// Not negative.
void check_ttl(std::string_view config, std::string_view field, std::chrono::milliseconds ttl);

// At least 1.
void check_positive(std::string_view config, std::string_view field, std::size_t value);

}  // namespace poolscope::cache::detail
