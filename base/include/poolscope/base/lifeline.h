// Lifeline: how one object reads another that may be destroyed at any moment
// on another thread (a metrics collector, scraped by a host's Exposer,
// reading a cache that its owner is destroying).
//
// The owner holds a Lifeline and ends it first thing in its destructor;
// end() waits for reads in progress and makes every later read fail. A
// reader keeps a Lifeline::Watch (a weak reference) and reads only through
// the Guard that Watch::lock() returns:
//
//   if (auto alive = watch.lock()) stats = cache.stats();   // else: gone
//
// REQUIRES: a reader holding a Guard must not wait for the owner's thread,
// and the owner must not end() its Lifeline while it holds one of its own.
//
// The class is thread-safe. No concurrent call to any API of this type causes
// a data race.

#pragma once

#include <memory>
#include <mutex>
#include <shared_mutex>

namespace poolscope::detail {

class Lifeline {
  struct State {
    std::shared_mutex mu;
    bool alive = true;  // guarded by mu
  };

 public:
  // Held while a read is in progress; false when the owner is gone.
  class Guard {
   public:
    Guard() = default;
    explicit operator bool() const noexcept { return lock_.owns_lock(); }

   private:
    friend class Lifeline;
    std::shared_ptr<State> state_;
    std::shared_lock<std::shared_mutex> lock_;
  };

  class Watch {
   public:
    Watch() = default;
    // A Guard that is true while the owner lives, for the Guard's lifetime.
    Guard lock() const {
      Guard g;
      g.state_ = state_.lock();
      if (g.state_ == nullptr) return g;
      std::shared_lock<std::shared_mutex> lock(g.state_->mu);
      if (g.state_->alive) g.lock_ = std::move(lock);
      return g;
    }
    bool expired() const noexcept {
      const std::shared_ptr<State> s = state_.lock();
      if (s == nullptr) return true;
      std::shared_lock lock(s->mu);
      return !s->alive;
    }

   private:
    friend class Lifeline;
    std::weak_ptr<State> state_;
  };

  Lifeline() : state_(std::make_shared<State>()) {}
  Lifeline(const Lifeline&) = delete;
  Lifeline& operator=(const Lifeline&) = delete;
  ~Lifeline() { end(); }

  // Waits for reads in progress to finish; every later lock() fails.
  void end() noexcept {
    std::unique_lock lock(state_->mu);
    state_->alive = false;
  }

  Watch watch() const {
    Watch w;
    w.state_ = state_;
    return w;
  }

 private:
  const std::shared_ptr<State> state_;
};

}  // namespace poolscope::detail
