// A PoolObserver for tests: counts every event and keeps the details that
// tests assert on.

#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "poolscope/pool/observer.h"

namespace poolscope::testing {

class RecordingObserver : public PoolObserver {
 public:
  void on_connect(const ConnectEvent&) override {
    connects.fetch_add(1);
    const int open = open_now.fetch_add(1) + 1;
    for (int max = max_open.load(); open > max && !max_open.compare_exchange_weak(max, open);) {
    }
  }
  void on_connect_failed(const ConnectFailedEvent& e) override {
    connect_failures.fetch_add(1);
    std::lock_guard lock(mu);
    errors.emplace_back(e.error);
  }
  void on_checkout(const CheckoutEvent&) override { checkouts.fetch_add(1); }
  void on_reuse(const ReuseEvent&) override { reuses.fetch_add(1); }
  void on_checkin(const CheckinEvent&) override { checkins.fetch_add(1); }
  void on_close(const CloseEvent& e) override {
    closes.fetch_add(1);
    open_now.fetch_sub(1);
    std::lock_guard lock(mu);
    close_reasons.push_back(e.reason);
  }
  void on_timeout(const TimeoutEvent&) override { timeouts.fetch_add(1); }
  void on_notice(const NoticeEvent& e) override {
    std::lock_guard lock(mu);
    notices.push_back(std::string(e.severity) + ": " + std::string(e.message));
  }
  void on_shutdown(const ShutdownEvent& e) override {
    std::lock_guard lock(mu);
    shutdown_leases.assign(e.leases.begin(), e.leases.end());
    shutdowns.fetch_add(1);
  }

  std::atomic<int> connects{0}, connect_failures{0}, checkouts{0}, reuses{0}, checkins{0},
      closes{0}, timeouts{0}, shutdowns{0}, open_now{0}, max_open{0};
  std::mutex mu;
  std::vector<std::string> errors;
  std::vector<CloseReason> close_reasons;
  std::vector<LeaseInfo> shutdown_leases;
  std::vector<std::string> notices;
};

}  // namespace poolscope::testing
