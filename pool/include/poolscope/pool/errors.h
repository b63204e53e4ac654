// The exceptions poolscope throws at its API edge. Every message is safe to
// log: connection URLs appear only in their redacted form.
//
// Bad configuration throws std::invalid_argument naming the field instead;
// SOCI's own soci::soci_error passes through unchanged from the SQL a caller
// runs on a lease.

#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "poolscope/base/error.h"

namespace poolscope {

// A connection URL that cannot be parsed. The message says what is wrong and
// shows the URL with its password replaced by "***".
class BadUrl : public Error {
 public:
  using Error::Error;
};

// Opening a database connection failed: the server is down, refused the
// credentials, the file cannot be opened... The message names the pool, the
// redacted URL and the database's own reason.
class ConnectError : public Error {
 public:
  using Error::Error;
};

// acquire() waited checkout_timeout without getting a connection. The message
// reads like SQLAlchemy's and HikariCP's: pool name, size, overflow, the wait,
// the counts and the call sites holding the most leases.
class PoolTimeout : public Error {
 public:
  PoolTimeout(std::string message, std::chrono::nanoseconds waited)
      : Error(std::move(message)), waited_(waited) {}

  std::chrono::nanoseconds waited() const noexcept { return waited_; }

 private:
  std::chrono::nanoseconds waited_;
};

// The pool is shutting down: acquire() was called on (or was waiting in) a
// pool whose destructor has started.
class PoolClosed : public Error {
 public:
  using Error::Error;
};

}  // namespace poolscope
