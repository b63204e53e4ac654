// Driver: what the pool needs from one database backend beyond SOCI's
// session: opening a connection (with its notices routed to the pool), and
// the checks SOCI does not expose (is a transaction open, is the connection
// broken, is it alive, answered within a deadline). One driver per backend,
// each in its own file and behind its own CMake option
// (POOLSCOPE_WITH_POSTGRESQL, POOLSCOPE_WITH_SQLITE), linking the backend's
// libraries itself.
//
// Drivers are stateless and thread-safe. A Connection is not: it belongs to
// whichever thread owns its slot (see slot.h).

#pragma once

#include <soci/session.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "poolscope/pool/url.h"
#include "statement_cache.h"

namespace poolscope::detail {

// Receives what the database says outside any result (a PostgreSQL NOTICE,
// or the FATAL that precedes a disconnect): severity and message, without
// the trailing newline. Called on whichever thread reads from the
// connection; must not throw.
using NoticeSink = std::function<void(std::string_view severity, std::string_view message)>;

// One physical connection.
class Connection {
 public:
  virtual ~Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  soci::session& session() noexcept { return session_; }
  StatementCache& statements() noexcept { return statements_; }

  // True when a transaction is open (or failed and not yet rolled back).
  virtual bool in_transaction() const noexcept = 0;

  // True when the connection can no longer be used: the server closed it, a
  // command is still running on it, or it is in a state a rollback cannot fix.
  virtual bool broken() const noexcept = 0;

  // Checks the connection is alive: runs query, or when it is empty the
  // backend's cheapest round trip, and waits for the answer until
  // deadline_ns (steady_ns() clock). False means dead or too slow: the
  // connection is then unusable and must be closed. Never throws.
  virtual bool validate(std::string_view query, std::int64_t deadline_ns) noexcept = 0;

  // Rolls back the open transaction. Throws what SOCI throws.
  virtual void rollback() = 0;

  // What a returning connection is: broken, in a transaction, or ready. One
  // call, for the return path.
  enum class State { kReady, kInTransaction, kBroken };
  virtual State state() const noexcept = 0;

 protected:
  Connection() = default;
  soci::session session_;
  StatementCache statements_;  // after session_: its statements go first
};

class Driver {
 public:
  virtual ~Driver() = default;

  // Opens a connection: blocks for as long as the backend's own connect
  // timeout allows (libpq's connect_timeout), so the pool calls it on a
  // thread of its own. Throws what SOCI throws.
  virtual std::unique_ptr<Connection> open(const std::string& connect_string,
                                           NoticeSink notices) const = 0;

  // True for an open() error that retrying cannot fix (wrong password, no
  // such database, a file that cannot be created): acquire() reports it at
  // once instead of retrying until its deadline.
  virtual bool permanent_failure(std::string_view error) const noexcept = 0;
};

// The driver of backend. Throws BadUrl for a backend this build left out.
const Driver& driver_for(Backend backend);

}  // namespace poolscope::detail
