// Call sites: the file, function and line of a std::source_location, printed
// the way the incident logs print them ("settings.cc:Load():237").

#pragma once

#include <string>
#include <string_view>

#include "poolscope/base/source_location.h"

namespace poolscope {

// short_file_name: the last path component of a file name:
// "src/app/settings.cc" -> "settings.cc".
// short_function_name: the bare name of a function from its pretty signature:
// "void app::Settings::Load(int) const" -> "Load()".
// format_site: "settings.cc:Load():237".

inline std::string_view short_file_name(std::string_view file) noexcept {
  const std::size_t slash = file.find_last_of("/\\");
  return slash == std::string_view::npos ? file : file.substr(slash + 1);
}

inline std::string short_function_name(std::string_view pretty) {
  // Cut the parameter list: the '(' that closes at the end of the name part,
  // skipping template arguments and "operator()" itself.
  std::size_t paren = std::string_view::npos;
  int angle = 0;
  for (std::size_t i = 0; i < pretty.size(); ++i) {
    const char c = pretty[i];
    if (c == '<') {
      ++angle;
    } else if (c == '>' && angle > 0) {
      --angle;
    } else if (c == '(' && angle == 0) {
      if (pretty.substr(0, i).ends_with("operator")) {
        i += 1;  // "operator()": the next '(' starts the parameters
        continue;
      }
      paren = i;
      break;
    }
  }
  std::string_view name = pretty.substr(0, paren);
  // Drop the return type and any qualifiers before the last "::" at depth 0.
  std::size_t begin = 0;
  angle = 0;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (c == '<') {
      ++angle;
    } else if (c == '>' && angle > 0) {
      --angle;
    } else if (angle == 0 && c == ' ' && !name.substr(0, i).ends_with("operator")) {
      begin = i + 1;
    } else if (angle == 0 && c == ':' && i + 1 < name.size() && name[i + 1] == ':') {
      begin = i + 2;
      ++i;
    }
  }
  name = name.substr(begin);
  while (!name.empty() && (name.front() == '*' || name.front() == '&')) name.remove_prefix(1);
  if (name.empty()) name = pretty.empty() ? std::string_view("?") : pretty;
  return std::string(name) + "()";
}

inline std::string format_site(const source_location& site) {
  std::string out(short_file_name(site.file_name()));
  out += ':';
  out += short_function_name(site.function_name());
  out += ':';
  out += std::to_string(site.line());
  return out;
}

}  // namespace poolscope
