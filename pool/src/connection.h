// Connection: one physical database connection (a soci::session) plus the
// native handle behind it, for the checks SOCI does not expose: is a
// transaction open, is the connection broken, a cheap liveness ping.
//
// Not thread-safe: a Connection belongs to whichever thread owns its slot.

#pragma once

#include <soci/session.h>

#include <memory>
#include <string>

#include "poolscope/pool/url.h"

namespace poolscope::detail {

class Connection {
 public:
  Connection() = default;
  Connection(Connection&&) noexcept = default;
  Connection& operator=(Connection&&) noexcept = default;
  ~Connection();

  // Opens a connection. Throws whatever SOCI throws (soci::soci_error).
  static Connection open(const ConnectionUrl& url, const std::string& connect_string);

  soci::session* session() const noexcept { return session_.get(); }
  explicit operator bool() const noexcept { return session_ != nullptr; }

  // True when a transaction is open (or failed and not yet rolled back).
  bool in_transaction() const noexcept;

  // True when the connection can no longer be used: the server closed it, or
  // it is stuck in a state a rollback cannot fix.
  bool broken() const noexcept;

  // Checks the connection is alive: runs query, or when it is empty the
  // backend's cheapest round trip. Never throws; false means dead.
  bool ping(const std::string& query) noexcept;

  // Rolls back the open transaction. Throws what SOCI throws.
  void rollback();

  // Closes the connection. Never throws.
  void close() noexcept;

 private:
  std::unique_ptr<soci::session> session_;
  Backend backend_ = Backend::kSqlite;
  void* native_ = nullptr;  // PGconn* or sqlite3*, owned by the session
};

}  // namespace poolscope::detail
