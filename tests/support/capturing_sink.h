// An spdlog sink that keeps every line, for tests that assert on log output,
// and can call a hook with each line as it is written.

#pragma once

#include <spdlog/details/null_mutex.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/base_sink.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace poolscope::testing {

// Locks itself rather than through base_sink, so that the hook runs outside
// the lock.
class CapturingSink : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 public:
  // Called with each line ("level: message") after it is kept, outside any
  // lock, on the logging thread: a test can hold that thread mid-line.
  void set_hook(std::function<void(const std::string&)> hook) {
    std::lock_guard lock(mu_);
    hook_ = std::move(hook);
  }

  // "level: message" for every line so far.
  std::vector<std::string> lines() {
    std::lock_guard lock(mu_);
    return lines_;
  }

  // The lines containing needle.
  std::vector<std::string> matching(std::string_view needle) {
    std::vector<std::string> out;
    for (std::string& line : lines()) {
      if (line.find(needle) != std::string::npos) out.push_back(std::move(line));
    }
    return out;
  }

  // A logger that writes here (and nowhere else), at every level.
  static std::pair<std::shared_ptr<spdlog::logger>, std::shared_ptr<CapturingSink>> logger(
      const std::string& name) {
    auto sink = std::make_shared<CapturingSink>();
    auto logger = std::make_shared<spdlog::logger>(name, sink);
    logger->set_level(spdlog::level::trace);
    return {logger, sink};
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const spdlog::string_view_t level = spdlog::level::to_string_view(msg.level);
    std::string line = std::string(level.data(), level.size()) + ": " +
                       std::string(msg.payload.data(), msg.payload.size());
    std::function<void(const std::string&)> hook;
    {
      std::lock_guard lock(mu_);
      lines_.push_back(line);
      hook = hook_;
    }
    if (hook) hook(line);
  }
  void flush_() override {}

 private:
  std::mutex mu_;
  std::vector<std::string> lines_;
  std::function<void(const std::string&)> hook_;
};

}  // namespace poolscope::testing
