#include "console.h"

#include <unistd.h>

#include <cstdio>

namespace poolscope::load {

Console& Console::instance() {
  static Console console;
  return console;
}

bool Console::is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

void Console::erase_bar_locked() {
  if (!bar_.empty()) std::fputs("\r\033[2K", stderr);
}

void Console::line(std::string_view text) {
  detail::MutexLock lock(mu_);
  erase_bar_locked();
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fputc('\n', stderr);
  if (!bar_.empty()) std::fputs(bar_.c_str(), stderr);
  std::fflush(stderr);
}

void Console::progress(std::string_view text) {
  detail::MutexLock lock(mu_);
  erase_bar_locked();
  bar_ = text;
  if (!bar_.empty()) std::fputs(bar_.c_str(), stderr);
  std::fflush(stderr);
}

}  // namespace poolscope::load
