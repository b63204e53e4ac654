// Small helpers the suites share.

#pragma once

#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

namespace poolscope::testing {

// Polls pred until it holds or limit passes, for states another thread brings about.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

// Runs a shell command; its exit status and its output (stdout and stderr).
inline std::pair<int, std::string> run_command(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) out.append(buffer, n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// What Config::validate() says once breaks(config) has broken it: the
// std::invalid_argument message, or "accepted".
template <class Config, class Breaks>
std::string validation_error(Breaks breaks) {
  Config config;
  breaks(config);
  try {
    config.validate();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "accepted";
}

}  // namespace poolscope::testing
