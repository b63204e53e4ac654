// Subscriber: the thread that receives other processes' invalidations. It
// holds one connection of its own, SUBSCRIBEd to the tier's channel, waits
// for messages with poll() (so that it also wakes to PING and to stop), and
// reconnects after a lost link, with a growing delay.
//
// A link is lost when a read or write fails, or when a PING sent every
// ping_interval gets no PONG within `timeout`: a Redis that hangs or a
// connection that silently died looks just like a quiet channel otherwise.
//
// Handlers run on the subscriber thread and must not throw.
//
// The class is thread-safe: its public calls may come from any thread.

#pragma once

#include <chrono>
#include <functional>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>

#include "connection.h"

namespace poolscope::cache::detail {

class Subscriber {
 public:
  struct Config {
    std::chrono::milliseconds connect_timeout{250};
    std::chrono::milliseconds timeout{100};
    std::chrono::milliseconds ping_interval{250};
    std::chrono::milliseconds max_retry_delay{1000};
    // How often tick() runs at least, whatever the channel does.
    std::chrono::milliseconds tick_interval{100};
  };
  struct Handlers {
    std::function<void(std::string_view payload)> message;
    // Each attempt to subscribe, and each end of a link, as one call.
    std::function<void(const CallResult&)> attempted;
    std::function<void()> subscribed;  // after each SUBSCRIBE succeeded
    // A link that worked is gone (was_connected), or the first attempt of an
    // outage failed: once per outage.
    std::function<void(const std::string& error, bool was_connected)> lost;
    std::function<void()> tick;  // periodic work (replaying invalidations)
  };

  // REQUIRES: url outlives the subscriber. Starts the thread.
  Subscriber(const RedisUrl& url, std::string channel, Config config, Handlers handlers);
  // Stops and joins the thread.
  ~Subscriber();
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

 private:
  void run(std::stop_token stop);
  // Connects and subscribes.
  CallResult subscribe();
  // Reads messages until the link dies (returns why) or stop.
  CallResult listen(const std::stop_token& stop);
  // Sleeps up to d, or until stop; false when stopped.
  bool sleep(const std::stop_token& stop, std::chrono::milliseconds d);
  // Handles one reply; an error string if it makes no sense.
  std::string handle(void* reply, bool* pong);

  const std::string channel_;
  const Config config_;
  const Handlers handlers_;
  const int wake_fd_;  // an eventfd: the stop request wakes poll()
  Connection connection_;
  std::jthread thread_;  // last: starts after, stops before, the rest
};

}  // namespace poolscope::cache::detail
