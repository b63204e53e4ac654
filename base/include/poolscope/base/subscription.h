// Subscription: the handle a registration returns (an observer added to a
// pool, say). Destroying it, or calling reset(), ends the registration; it
// is safe whichever of the two sides goes first, because what it calls
// holds only weak references to the other side (absl::Cleanup with a
// weak_ptr, as prometheus-cpp's Exposer holds its collectables).
//
// Move-only. Not thread-safe: one owner at a time, as with std::unique_ptr.

#pragma once

#include <functional>
#include <utility>

namespace poolscope {

class [[nodiscard]] Subscription {
 public:
  // Subscribed to nothing.
  Subscription() noexcept = default;

  // cancel ends the registration; it must not throw, and must be safe to
  // call after the other side is gone.
  explicit Subscription(std::function<void()> cancel) noexcept : cancel_(std::move(cancel)) {}

  Subscription(Subscription&& other) noexcept : cancel_(std::exchange(other.cancel_, nullptr)) {}
  Subscription& operator=(Subscription&& other) noexcept {
    if (this != &other) {
      reset();
      cancel_ = std::exchange(other.cancel_, nullptr);
    }
    return *this;
  }
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;

  ~Subscription() { reset(); }

  // Ends the registration now; the handle becomes empty.
  void reset() noexcept {
    if (auto cancel = std::exchange(cancel_, nullptr)) {
      try {
        cancel();
      } catch (...) {
        // cancel must not throw; if it does, the registration is as good as gone.
      }
    }
  }

  // Keeps the registration for as long as the other side lives, and empties
  // the handle (as a leaked handle would, but on purpose).
  void detach() noexcept { cancel_ = nullptr; }

  explicit operator bool() const noexcept { return static_cast<bool>(cancel_); }

 private:
  std::function<void()> cancel_;
};

}  // namespace poolscope
