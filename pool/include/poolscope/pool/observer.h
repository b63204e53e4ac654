// PoolObserver: how a Pool tells the rest of poolscope (tracing, metrics) what
// it does, without depending on any of it.
//
// Callbacks run synchronously on the thread that caused the event (acquire,
// release, the housekeeper), outside the pool's lock, so they must be cheap
// and must not call back into the pool in a way that could wait on it.
// Observers must be safe to call from many threads at once. An exception
// thrown by a callback is caught and dropped.

#pragma once

#include <chrono>
#include <cstdint>
#include <source_location>
#include <span>
#include <string_view>

#include "poolscope/pool/pool_stats.h"

namespace poolscope {

// A lease that is checked out, as Pool::active_leases() and shutdown report it.
struct LeaseInfo {
  std::uint64_t connection_id = 0;
  std::uint32_t slot = 0;            // index of the connection's slot, below max_connections
  std::source_location site;         // where the outermost acquire() was called
  std::uint64_t thread = 0;          // OS thread id of the acquirer
  std::chrono::nanoseconds held{0};  // since checkout
  std::uint64_t checkout = 0;        // identifies this checkout of this slot
};

struct ConnectEvent {
  std::string_view pool;
  std::uint64_t connection_id;
  std::chrono::nanoseconds duration;
  const std::source_location* site;  // the acquire that needed it; null for housekeeping
};

struct ConnectFailedEvent {
  std::string_view pool;
  std::string_view error;  // password scrubbed
  std::chrono::nanoseconds duration;
  const std::source_location* site;
};

struct CheckoutEvent {
  std::string_view pool;
  std::uint64_t connection_id;
  std::uint32_t slot;
  std::uint64_t checkout;  // as LeaseInfo::checkout
  const std::source_location& site;
  std::uint64_t thread;
  std::chrono::nanoseconds wait;  // zero when a connection was ready
};

// A nested acquire() served by the connection the thread already holds.
struct ReuseEvent {
  std::string_view pool;
  std::uint64_t connection_id;
  std::uint32_t slot;
  const std::source_location& site;
};

struct CheckinEvent {
  std::string_view pool;
  std::uint64_t connection_id;
  std::uint32_t slot;
  std::uint64_t checkout;
  std::source_location site;  // of the checkout
  std::uint64_t thread;       // of the checkout
  std::chrono::nanoseconds held;
};

struct CloseEvent {
  std::string_view pool;
  std::uint64_t connection_id;
  CloseReason reason;
  std::chrono::nanoseconds age;
};

struct TimeoutEvent {
  std::string_view pool;
  const std::source_location& site;
  std::chrono::nanoseconds waited;
};

// The pool is being destroyed; leases lists the ones still checked out.
struct ShutdownEvent {
  std::string_view pool;
  std::span<const LeaseInfo> leases;
};

// The events an observer receives (PoolObserver::events()).
enum PoolEvents : unsigned {
  kConnectEvents = 1u << 0,
  kConnectFailedEvents = 1u << 1,
  kCheckoutEvents = 1u << 2,
  kReuseEvents = 1u << 3,
  kCheckinEvents = 1u << 4,
  kCloseEvents = 1u << 5,
  kTimeoutEvents = 1u << 6,
  kShutdownEvents = 1u << 7,
  kAllEvents = (1u << 8) - 1,
};

class PoolObserver {
 public:
  virtual ~PoolObserver() = default;

  // Which events to deliver (a PoolEvents mask), read once when the observer
  // is added: the pool skips observers that do not want an event, so an
  // event nobody wants costs nothing on the checkout path.
  virtual unsigned events() const { return kAllEvents; }

  virtual void on_connect(const ConnectEvent&) {}
  virtual void on_connect_failed(const ConnectFailedEvent&) {}
  virtual void on_checkout(const CheckoutEvent&) {}
  virtual void on_reuse(const ReuseEvent&) {}
  virtual void on_checkin(const CheckinEvent&) {}
  virtual void on_close(const CloseEvent&) {}
  virtual void on_timeout(const TimeoutEvent&) {}
  virtual void on_shutdown(const ShutdownEvent&) {}
};

}  // namespace poolscope
