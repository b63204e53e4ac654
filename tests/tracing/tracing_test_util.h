// Helpers the tracing suites share.

#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "poolscope/base/source_location.h"
#include "poolscope/pool/pool.h"
#include "poolscope/tracing/tracer.h"

namespace poolscope::tracing::testing {

// A copy: sites() returns a temporary. value() of a missing site throws,
// which fails the test instead of crashing it.
inline std::optional<SiteStats> find_site(const std::vector<SiteStats>& sites,
                                          const std::string& name) {
  for (const SiteStats& s : sites) {
    if (s.name == name) return s;
  }
  return std::nullopt;
}

inline Lease acquire_at(Pool& pool, poolscope::source_location site) { return pool.acquire(site); }

// The unsigned number captured by the first group of re in text, or -1.
inline long long number_in(const std::string& text, const std::string& re) {
  std::smatch m;
  if (!std::regex_search(text, m, std::regex(re))) return -1;
  std::string digits = m[1];
  std::erase(digits, ',');
  return std::stoll(digits);
}

// Two threads meeting: one holds at a point until the other says go on.
// The waits give up after a long guard so that a regression fails instead
// of hanging; the tests assert on the order of events, not on time.
class Rendezvous {
 public:
  // The held thread: says it arrived, then waits for go(). False if go()
  // never came.
  bool arrive_and_wait() {
    std::unique_lock lock(mu_);
    arrived_ = true;
    cv_.notify_all();
    return cv_.wait_for(lock, std::chrono::seconds(20), [&] { return went_; });
  }
  // The other thread: waits until the held one arrived.
  bool wait_arrived() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(20), [&] { return arrived_; });
  }
  void go() {
    std::lock_guard lock(mu_);
    went_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool arrived_ = false;
  bool went_ = false;
};

}  // namespace poolscope::tracing::testing
