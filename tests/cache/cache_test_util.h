// Helpers the cache suites share: a TtlCache config on a manual clock, the
// fixture that owns the clock, calls on a thread of their own that a test
// can give up on, and a value whose copies can be made to fail.

#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <utility>

#include "poolscope/cache/ttl_cache.h"

namespace poolscope::cache::testing {

using namespace std::chrono_literals;

inline TtlCacheConfig manual(std::shared_ptr<ManualClock> clock, std::size_t max_entries = 100,
                             std::size_t shards = 4) {
  TtlCacheConfig c;
  c.name = "test";
  c.ttl = 300s;
  c.max_entries = max_entries;
  c.shards = shards;
  c.clock = std::move(clock);
  return c;
}

class TtlCacheTest : public ::testing::Test {
 protected:
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>();
};

// Runs f on a thread of its own. Unlike std::async's, the future does not
// join in its destructor, so a test can give up on a call that hangs.
template <class F>
auto start(F f) {
  auto task = std::make_shared<std::packaged_task<std::invoke_result_t<F&>()>>(std::move(f));
  auto future = task->get_future();
  std::thread([task] { (*task)(); }).detach();
  return future;
}

// The result of a started call. One that has not returned within a generous
// limit fails the test and ends the process: the thread cannot be stopped,
// and it uses objects the test is about to destroy.
template <class T>
T finish(std::future<T>& future) {
  if (future.wait_for(30s) != std::future_status::ready) {
    ADD_FAILURE() << "the call never returned: a key was left hanging";
    std::cout.flush();
    std::fflush(nullptr);
    std::_Exit(1);
  }
  return future.get();
}

// A value whose copies fail while fail_copies is set (moves never do).
struct Fragile {
  static inline std::atomic<bool> fail_copies{false};
  explicit Fragile(int v) : value(v) {}
  Fragile(const Fragile& other) : value(other.value) { check(); }
  Fragile(Fragile&&) noexcept = default;
  Fragile& operator=(const Fragile& other) {
    check();
    value = other.value;
    return *this;
  }
  Fragile& operator=(Fragile&&) noexcept = default;
  static void check() {
    if (fail_copies.load()) throw std::runtime_error("copy failed");
  }
  int value;
};

}  // namespace poolscope::cache::testing
