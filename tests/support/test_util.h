// Small helpers the suites share.

#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
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

// Runs a shell command; its exit status (-1 if it did not exit) and its
// output: stdout and stderr together, or, given err, stdout alone with
// stderr in *err (for a program whose stdout is data, such as JSON).
inline std::pair<int, std::string> run_command(const std::string& command,
                                               std::string* err = nullptr) {
  std::string err_path;
  std::string redirect = " 2>&1";
  if (err != nullptr) {
    char path[] = "/tmp/poolscope-test-stderr.XXXXXX";
    const int fd = ::mkstemp(path);
    if (fd < 0) return {-1, "mkstemp failed"};
    ::close(fd);
    err_path = path;
    redirect = " 2>" + err_path;
  }
  std::string out;
  // The command in braces, so the redirection applies to all of it.
  FILE* pipe = ::popen(("{ " + command + "\n}" + redirect).c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) out.append(buffer, n);
  const int status = ::pclose(pipe);
  if (err != nullptr) {
    std::ifstream in(err_path);
    err->assign(std::istreambuf_iterator<char>(in), {});
    std::remove(err_path.c_str());
  }
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// The key=value lines of the env file a CTest fixture wrote, found through
// the environment variable that names it. Throws std::runtime_error when the
// variable is unset (the test was not run through ctest) or the file is
// missing (the fixture did not start its server), naming the fixture.
inline std::map<std::string, std::string> read_env_file(const char* variable,
                                                        std::string_view fixture) {
  const char* path = std::getenv(variable);
  if (path == nullptr || *path == '\0') {
    throw std::runtime_error(std::string(variable) +
                             " is not set: run this test through ctest, whose fixture '" +
                             std::string(fixture) + "' starts the server it needs");
  }
  std::ifstream in(path);
  if (!in) {
    throw std::runtime_error(std::string("no test server: ") + path +
                             " is missing; the ctest fixture '" + std::string(fixture) +
                             "' did not start it");
  }
  std::map<std::string, std::string> values;
  for (std::string line; std::getline(in, line);) {
    const auto eq = line.find('=');
    if (eq != std::string::npos) values[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return values;
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
