// Console: poolscope-load's stderr, shared by the progress bar and log lines
// so that a line printed while the bar is drawn does not land inside it: the
// bar is erased, the line printed, the bar drawn again.
//
// The class is thread-safe. No concurrent call to any API of this type causes
// a data race.

#pragma once

#include <string>
#include <string_view>

#include "poolscope/base/mutex.h"

namespace poolscope::load {

class Console {
 public:
  static Console& instance();

  // Prints one line (a newline is added) above the progress bar.
  void line(std::string_view text);

  // Replaces the progress bar with text; an empty text removes it.
  void progress(std::string_view text);

  // True when stderr is a terminal (the bar needs one).
  static bool is_terminal();

 private:
  Console() = default;
  void erase_bar_locked() POOLSCOPE_REQUIRES(mu_);

  detail::Mutex mu_;
  std::string bar_ POOLSCOPE_GUARDED_BY(mu_);
};

}  // namespace poolscope::load
