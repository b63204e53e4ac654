// An spdlog sink that prints through the Console, so log lines appear above
// the progress bar instead of inside it.

#pragma once

#include <spdlog/logger.h>
#include <spdlog/sinks/base_sink.h>

#include <memory>
#include <mutex>
#include <string>

#include "console.h"

namespace poolscope::load {

class ConsoleSink : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t text;
    formatter_->format(msg, text);
    std::string line(text.data(), text.size());
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    Console::instance().line(line);
  }
  void flush_() override {}
};

// The logger poolscope-load hands to its tracer: stderr, above the bar;
// tag (if any) goes in front of every line ("p2" for the second process).
inline std::shared_ptr<spdlog::logger> console_logger(const std::string& tag = {}) {
  auto logger = std::make_shared<spdlog::logger>("poolscope", std::make_shared<ConsoleSink>());
  logger->set_pattern(tag.empty() ? std::string("%H:%M:%S.%e %^%-5l%$ %v")
                                  : "%H:%M:%S.%e " + tag + " %^%-5l%$ %v");
  logger->set_level(spdlog::level::info);
  return logger;
}

}  // namespace poolscope::load
