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
#include <span>
#include <string_view>

#include "poolscope/base/source_location.h"
#include "poolscope/pool/pool_stats.h"

namespace poolscope {

// A lease that is checked out, as Pool::active_leases() and shutdown report it.
struct LeaseInfo {
  std::uint64_t connection_id = 0;
  std::uint32_t slot = 0;            // index of the connection's slot, below max_connections
  poolscope::source_location site;   // where the outermost acquire() was called
  std::uint64_t thread = 0;          // OS thread id of the acquirer
  std::chrono::nanoseconds held{0};  // since checkout
  std::uint64_t checkout = 0;        // identifies this checkout of this slot
};

// Every event names its call site the same way, by value: the acquire()
// that caused it, or a default-constructed source_location (has_site() is
// false) for work the pool did on its own (min_idle, housekeeping).

struct ConnectEvent {
  std::string_view pool;
  std::uint64_t connection_id;
  std::chrono::nanoseconds duration;
  source_location site;
};

struct ConnectFailedEvent {
  std::string_view pool;
  std::string_view error;  // password scrubbed
  std::chrono::nanoseconds duration;
  source_location site;
  std::uint32_t attempt;  // 1 for the first try, 2 for its first retry, ...
};

struct CheckoutEvent {
  std::string_view pool;
  std::uint64_t connection_id;
  std::uint32_t slot;
  std::uint64_t checkout;  // as LeaseInfo::checkout
  source_location site;
  std::uint64_t thread;
  std::chrono::nanoseconds wait;     // queued for a connection; zero when one was ready
  std::chrono::nanoseconds acquire;  // the whole acquire() as the caller saw it: wait,
                                     // validation and any connect made for it
  std::int64_t time_ns;  // the pool's monotonic clock at checkout: only differences mean anything
};

// A nested acquire() served by the connection the thread already holds.
struct ReuseEvent {
  std::string_view pool;
  std::uint64_t connection_id;
  std::uint32_t slot;
  source_location site;
};

struct CheckinEvent {
  std::string_view pool;
  std::uint64_t connection_id;
  std::uint32_t slot;
  std::uint64_t checkout;
  source_location site;  // of the checkout
  std::uint64_t thread;  // of the checkout
  std::chrono::nanoseconds held;
  std::int64_t time_ns;  // the pool's monotonic clock at checkin (as CheckoutEvent::time_ns)
  std::uint64_t reuses;  // nested acquires this checkout served
};

struct CloseEvent {
  std::string_view pool;
  std::uint64_t connection_id;
  CloseReason reason;
  std::chrono::nanoseconds age;
};

struct TimeoutEvent {
  std::string_view pool;
  source_location site;
  std::chrono::nanoseconds waited;
};

// A message the database sent on a connection outside any result: a
// PostgreSQL NOTICE or WARNING, or the FATAL that precedes a disconnect
// ("terminating connection due to administrator command").
struct NoticeEvent {
  std::string_view pool;
  std::uint64_t connection_id;
  std::string_view severity;  // as the server sends it: "NOTICE", "WARNING", "FATAL", ...
  std::string_view message;   // without the trailing newline; password scrubbed
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
  kNoticeEvents = 1u << 8,
  kAllEvents = (1u << 9) - 1,
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
  // The hot path of a checkin, for observers that count every lease's
  // return: the CheckinEvent fields they need (site, held, reuses) and when
  // the lease went out (checkout_ns, the pool clock: CheckinEvent::time_ns
  // is checkout_ns + held), in registers, before the whole event is built.
  // Return true to be sent on_checkin() with the whole CheckinEvent as well:
  // the default does, for observers that override only on_checkin(); a
  // counting observer returns true only when it has something rare to do
  // with it.
  virtual bool on_checkin_fast(source_location /*site*/, std::chrono::nanoseconds /*held*/,
                               std::int64_t /*checkout_ns*/, std::uint64_t /*reuses*/) {
    return true;
  }
  virtual void on_checkin(const CheckinEvent&) {}
  virtual void on_close(const CloseEvent&) {}
  virtual void on_timeout(const TimeoutEvent&) {}
  virtual void on_notice(const NoticeEvent&) {}
  virtual void on_shutdown(const ShutdownEvent&) {}
};

}  // namespace poolscope
