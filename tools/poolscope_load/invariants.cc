#include "invariants.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace poolscope::load {
namespace {

std::string text(const char* what, std::size_t value, const char* rule, std::size_t bound) {
  return std::string(what) + " " + std::to_string(value) + " " + rule + " " + std::to_string(bound);
}

// Raises max to at least value; only the sampler's thread writes.
void raise(std::atomic<std::size_t>& max, std::size_t value) {
  if (value > max.load(std::memory_order_relaxed)) max.store(value, std::memory_order_relaxed);
}

}  // namespace

InvariantSampler::InvariantSampler(const Pool& pool, std::size_t acquirers, bool enabled)
    : pool_(pool), acquirers_(acquirers), enabled_(enabled) {
  if (enabled_) thread_ = std::thread([this] { sample(); });
}

InvariantSampler::~InvariantSampler() {
  stop_.store(true, std::memory_order_relaxed);
  if (thread_.joinable()) thread_.join();
}

void InvariantSampler::violation(std::string text) {
  detail::MutexLock lock(mu_);
  if (violations_.size() < 20) violations_.push_back(std::move(text));
}

std::vector<std::string> InvariantSampler::violations() const {
  detail::MutexLock lock(mu_);
  return violations_;
}

void InvariantSampler::sample() {
  while (!stop_.load(std::memory_order_relaxed)) {
    const PoolStats s = pool_.stats();
    raise(max_open_, s.open);
    raise(max_pending_, s.pending);
    if (s.open > s.max_connections) violation(text("open", s.open, ">", s.max_connections));
    if (s.active > s.max_connections) violation(text("active", s.active, ">", s.max_connections));
    if (s.pending > acquirers_) {
      violation(text("pending", s.pending, ">", acquirers_) + " threads that acquire");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

void InvariantSampler::stop_and_check_final() {
  stop_.store(true, std::memory_order_relaxed);
  if (thread_.joinable()) thread_.join();
  if (!enabled_) return;
  // Nothing lost: with every worker stopped, every lease is back. The pool's
  // own thread may still be opening a connection (min_idle) or closing one
  // it found broken, and stats() is not one snapshot, so the counts are read
  // until they agree, for at most a second: a count that is really lost
  // stays wrong.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  std::vector<std::string> found;
  do {
    found.clear();
    const PoolStats after = pool_.stats();
    if (after.active != 0)
      found.push_back("active " + std::to_string(after.active) + " after the run");
    if (after.pending != 0)
      found.push_back("pending " + std::to_string(after.pending) + " after the run");
    if (after.open != after.idle) {
      found.push_back(text("open", after.open, "!= idle", after.idle) + " after the run");
    }
    if (after.connections_opened - after.closed_total() != after.open) {
      found.push_back(
          "opened - closed = " + std::to_string(after.connections_opened - after.closed_total()) +
          " but open = " + std::to_string(after.open));
    }
    if (found.empty()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  } while (std::chrono::steady_clock::now() < deadline);
  for (std::string& v : found) violation(std::move(v));
}

}  // namespace poolscope::load
