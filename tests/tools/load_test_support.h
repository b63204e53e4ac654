// What the poolscope-load suites share: running the real binary (to the end,
// or in the background as a child to signal and inspect), reading its JSON,
// files and /proc entries.

#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_util.h"

namespace poolscope::testing {

struct LoadRun {
  int exit_code = -1;
  nlohmann::json json;
  std::string err;  // stderr
  std::string out;  // stdout
};

// Runs poolscope-load with args (a shell fragment) to its end, in this
// process's environment without DATABASE_URL, plus env_prefix's assignments
// (NAME='value' ...); with json, adds "--no-progress --json -" and parses
// stdout.
inline LoadRun run_load(const std::string& args, bool json = true,
                        const std::string& env_prefix = "") {
  LoadRun run;
  const std::string command = "env -u DATABASE_URL " + env_prefix + " " +
                              std::string(POOLSCOPE_LOAD) +
                              (json ? " --no-progress --json - " : " ") + args;
  const auto [status, out] = run_command(command, &run.err);
  run.exit_code = status;
  run.out = out;
  if (json && !out.empty()) run.json = nlohmann::json::parse(out, nullptr, false);
  return run;
}

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), {}};
}

// A fresh temporary directory, removed by the destructor.
class TempDir {
 public:
  explicit TempDir(const std::string& name)
      : path_(std::filesystem::temp_directory_path() /
              (name + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++))) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  static int& counter() {
    static int n = 0;
    return n;
  }
  std::filesystem::path path_;
};

// A child process, killed and reaped by the destructor if it still runs.
class Child {
 public:
  // Runs argv[0] with argv in this process's environment, without what
  // would choose a database or its password (DATABASE_URL, PGPASSWORD,
  // PGPASSFILE) and with env added; stdout and stderr to the files out and err.
  Child(const std::vector<std::string>& argv, const std::string& out, const std::string& err,
        const std::map<std::string, std::string>& env = {}) {
    std::vector<std::string> environment;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string entry = *e;
      const std::string key = entry.substr(0, entry.find('='));
      if (key == "DATABASE_URL" || key == "PGPASSWORD" || key == "PGPASSFILE") continue;
      if (!env.contains(key)) environment.push_back(entry);
    }
    for (const auto& [key, value] : env) environment.push_back(key + "=" + value);
    std::vector<char*> args, envp;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    for (const std::string& e : environment) envp.push_back(const_cast<char*>(e.c_str()));
    args.push_back(nullptr);
    envp.push_back(nullptr);
    const int out_fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const int err_fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out_fd >= 0 && err_fd >= 0) pid_ = ::fork();
    if (pid_ == 0) {  // only async-signal-safe calls until exec
      if (::dup2(out_fd, STDOUT_FILENO) < 0 || ::dup2(err_fd, STDERR_FILENO) < 0) ::_exit(126);
      ::execve(args[0], args.data(), envp.data());
      ::_exit(127);
    }
    if (out_fd >= 0) ::close(out_fd);
    if (err_fd >= 0) ::close(err_fd);
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  void signal(int sig) const { ::kill(pid_, sig); }
  // Waits for the child to end; its exit status, or -1 if a signal ended it.
  int wait() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
};

// /proc/<pid>/cmdline with its NULs as spaces.
inline std::string command_line_of(pid_t pid) {
  std::string text = read_file("/proc/" + std::to_string(pid) + "/cmdline");
  for (char& c : text) {
    if (c == '\0') c = ' ';
  }
  return text;
}

// Waits up to limit until file holds text.
inline bool file_shows(const std::string& file, const std::string& text,
                       std::chrono::milliseconds limit = std::chrono::seconds(60)) {
  return eventually([&] { return read_file(file).find(text) != std::string::npos; }, limit);
}

// How many times needle occurs in haystack.
inline std::size_t occurrences(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + needle.size())) {
    ++n;
  }
  return n;
}

}  // namespace poolscope::testing
