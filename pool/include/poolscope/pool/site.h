// Call sites: the file, function and line of a std::source_location, printed
// the way the incident logs print them ("settings.cc:Load():237").

#pragma once

#include <source_location>
#include <string>
#include <string_view>

namespace poolscope {

// The last path component of a file name: "src/app/settings.cc" -> "settings.cc".
std::string_view short_file_name(std::string_view file) noexcept;

// The bare name of a function from its pretty signature:
// "void app::Settings::Load(int) const" -> "Load()".
std::string short_function_name(std::string_view pretty);

// "settings.cc:Load():237".
std::string format_site(const std::source_location& site);

}  // namespace poolscope
