// An spdlog sink that keeps every line, for tests that assert on log output.

#pragma once

#include <spdlog/logger.h>
#include <spdlog/sinks/base_sink.h>

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace poolscope::testing {

class CapturingSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  // "level: message" for every line so far.
  std::vector<std::string> lines() {
    std::lock_guard lock(mutex_);
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
    lines_.push_back(std::string(spdlog::level::to_string_view(msg.level).data(),
                                 spdlog::level::to_string_view(msg.level).size()) +
                     ": " + std::string(msg.payload.data(), msg.payload.size()));
  }
  void flush_() override {}

 private:
  std::vector<std::string> lines_;
};

}  // namespace poolscope::testing
