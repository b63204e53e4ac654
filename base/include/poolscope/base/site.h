// Call sites: the file, function and line of a source_location, printed the
// way the incident logs print them ("api/settings.cc:Load():237"). One form
// everywhere: the session log, leak and churn reports, metric labels and the
// pool's PoolTimeout text all name a site with format_site().
//
// A site's file is named by its path below the site root when one is set
// (set_site_root(), else the environment variable POOLSCOPE_SITE_ROOT), else
// by its last two path components, so two handler.cc in different folders
// get different names while a name never depends on where the build tree
// was. Names depend only on the file name and the root: they are stable
// across runs and machines, and bounded by the file's path.
//
// Thread-safe: set_site_root() may race with format_site() (each call sees
// the old root or the new one), but set the root once at start-up, before
// the first acquire(): names already in a site table keep the root they were
// made with.

#pragma once

#include <cstdlib>
#include <mutex>
#include <string>
#include <string_view>

#include "poolscope/base/log_text.h"
#include "poolscope/base/source_location.h"

namespace poolscope {

// The last path component: "src/app/settings.cc" -> "settings.cc".
inline std::string_view short_file_name(std::string_view file) noexcept {
  const std::size_t slash = file.find_last_of("/\\");
  return slash == std::string_view::npos ? file : file.substr(slash + 1);
}

// The last `components` path components: ("/src/app/api/handler.cc", 2) ->
// "api/handler.cc". A leading "./" or "../" never counts as a component.
inline std::string_view last_path_components(std::string_view file,
                                             std::size_t components) noexcept {
  std::size_t start = 0;  // where the kept components begin
  std::size_t end = file.size();
  for (std::size_t kept = 0; kept < components && end > 0; ++kept) {
    const std::size_t slash = file.find_last_of("/\\", end - 1);
    if (slash == std::string_view::npos) {
      start = 0;
      break;
    }
    start = slash + 1;
    end = slash;
  }
  std::string_view out = file.substr(start);
  while (out.starts_with("./") || out.starts_with("../")) out.remove_prefix(out.find('/') + 1);
  return out;
}

namespace detail {

struct SiteRoot {
  std::mutex mu;
  bool set = false;  // by set_site_root(); else POOLSCOPE_SITE_ROOT counts
  std::string root;
};

// Never destroyed: a site may be named while statics are torn down.
inline SiteRoot& site_root_state() {
  static SiteRoot* const state = new SiteRoot;
  return *state;
}

}  // namespace detail

// The prefix cut from file names in site names: usually the source tree's
// root ("/home/ci/app", as CMake's PROJECT_SOURCE_DIR). Files under it are
// named by their whole path below it ("src/api/handler.cc"); files outside
// it, and every file when the root is empty, by their last two path
// components. Until this is called the environment variable
// POOLSCOPE_SITE_ROOT gives the root (none when unset).
inline void set_site_root(std::string_view root) {
  detail::SiteRoot& s = detail::site_root_state();
  std::lock_guard lock(s.mu);
  s.set = true;
  s.root = root;
}

inline std::string site_root() {
  detail::SiteRoot& s = detail::site_root_state();
  std::lock_guard lock(s.mu);
  if (s.set) return s.root;
  const char* env = std::getenv("POOLSCOPE_SITE_ROOT");
  return env != nullptr ? env : "";
}

// The file part of a site name, as described above, unescaped.
inline std::string site_file_name(std::string_view file) {
  std::string root = site_root();
  while (root.size() > 1 && (root.back() == '/' || root.back() == '\\')) root.pop_back();
  if (!root.empty() && file.size() > root.size() + 1 && file.starts_with(root) &&
      (file[root.size()] == '/' || file[root.size()] == '\\')) {
    return std::string(file.substr(root.size() + 1));
  }
  return std::string(last_path_components(file, 2));
}

// The bare name of a function from its pretty signature:
// "void app::Settings::Load(int) const" -> "Load()".
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
      if (pretty.substr(i).starts_with("(anonymous namespace)")) {  // a demangled symbol
        i += std::string_view("(anonymous namespace)").size() - 1;
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

// "api/settings.cc:Load():237", control characters escaped (log_text()): a
// file name from #line may hold anything, and a site name must stay one line
// in a log and a valid label value.
inline std::string format_site(const source_location& site) {
  std::string out = log_text(site_file_name(site.file_name()));
  out += ':';
  out += log_text(short_function_name(site.function_name()));
  out += ':';
  out += std::to_string(site.line());
  return out;
}

}  // namespace poolscope
