// PeriodicWorker: a background thread that runs a task every period until it
// is stopped or destroyed, and wakes at once for a stop (a std::jthread with
// its stop token). The pool's housekeeper, the tracer's detectors and a
// cache's refresher are each one of these.
//
// The class is thread-safe: wake() and stop() may be called from any thread,
// including from the task itself (stop() from the task does not wait for it).

#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <stop_token>
#include <thread>
#include <utility>

namespace poolscope::detail {

class PeriodicWorker {
 public:
  // Not running.
  PeriodicWorker() = default;

  // Starts the thread: task(stop_token) runs once per period (the first run
  // one period from now), and must return soon after the token asks it to
  // stop. A task that throws is not called again. Periods are clamped to
  // [1 ms, 1 day] so that neither a busy loop nor a clock overflow happens.
  template <class Rep, class Period>
  PeriodicWorker(std::chrono::duration<Rep, Period> period,
                 std::function<void(std::stop_token)> task)
      : period_(clamp(std::chrono::duration_cast<std::chrono::nanoseconds>(period))),
        thread_([this, task = std::move(task)](std::stop_token stop) { loop(stop, task); }) {}

  PeriodicWorker(const PeriodicWorker&) = delete;
  PeriodicWorker& operator=(const PeriodicWorker&) = delete;

  // Stops and joins (unless called on the worker thread itself).
  ~PeriodicWorker() { stop(); }

  // Runs the task now rather than at the end of the current period.
  void wake() {
    {
      std::lock_guard lock(mu_);
      woken_ = true;
    }
    cv_.notify_one();
  }

  // Asks the task to stop and waits for the thread to end.
  void stop() noexcept {
    thread_.request_stop();
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
  }

  bool running() const noexcept { return thread_.joinable(); }

 private:
  static std::chrono::nanoseconds clamp(std::chrono::nanoseconds period) noexcept {
    if (period < std::chrono::milliseconds(1)) return std::chrono::milliseconds(1);
    if (period > std::chrono::hours(24)) return std::chrono::hours(24);
    return period;
  }

  void loop(std::stop_token stop, const std::function<void(std::stop_token)>& task) noexcept {
    std::unique_lock lock(mu_);
    while (!stop.stop_requested()) {
      cv_.wait_for(lock, stop, period_, [this] { return woken_; });
      if (stop.stop_requested()) break;
      woken_ = false;
      lock.unlock();
      try {
        task(stop);
      } catch (...) {
        return;  // a task that throws has broken its own contract; stop calling it
      }
      lock.lock();
    }
  }

  std::chrono::nanoseconds period_{0};
  std::mutex mu_;
  std::condition_variable_any cv_;
  bool woken_ = false;   // guarded by mu_
  std::jthread thread_;  // last: it starts after, and stops before, the rest
};

}  // namespace poolscope::detail
