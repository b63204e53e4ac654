// PreparedStatement: a statement prepared once per physical connection and
// reused by every later lease of that connection, the way pgjdbc switches a
// hot query to a server-side prepared statement: the server parses and plans
// it once, not on every read.
//
//   std::string value;
//   bool found = lease.prepared("select setting_value from account_settings"
//                               " where account_id = :a and setting_key = :k")
//                    .execute(soci::use(account), soci::use(key), soci::into(value));
//
// Statements belong to the connection: a bounded LRU per connection
// (PoolConfig::statement_cache_size), dropped with the connection. Behind a
// transaction-pooling proxy (PoolConfig::transaction_pooler) or with a cache
// size of 0, nothing is prepared on the server and every execute() is a
// one-time query, so a statement never goes to a session it was not made on.
// If the server forgot a statement all the same ("prepared statement ... does
// not exist": DISCARD ALL, a proxy switching sessions), execute() prepares it
// again and retries once, outside a transaction; inside one it throws an
// Error that names the cause and the setting.
//
// Obtained from Lease::prepared(); valid while that lease is held. Not
// thread-safe: one thread at a time, as the lease.

#pragma once

#include <soci/soci.h>

#include <optional>
#include <string>

namespace poolscope {

namespace detail {
class Connection;
class StatementCache;
}  // namespace detail

class PreparedStatement {
 public:
  // Binds elements (soci::use() and soci::into() results), executes, and
  // fetches the first row into the into elements. Returns true when a row
  // was fetched. Throws what SOCI throws, or Error (see above).
  template <class... Elements>
  bool execute(const Elements&... elements);

  // Fetches the next row into the into elements of the last execute().
  bool fetch() { return statement_->fetch(); }

  const std::string& sql() const noexcept { return sql_; }

  PreparedStatement(const PreparedStatement&) = delete;
  PreparedStatement& operator=(const PreparedStatement&) = delete;

 private:
  friend class detail::StatementCache;
  PreparedStatement(detail::Connection& connection, std::string sql, bool one_time);

  // The statement, ready for exchange(): prepared once, or a fresh one-time
  // statement.
  soci::statement& begin();
  bool finish();
  // After a failure: true when the statement was lost on the server and may
  // be prepared again; otherwise throws (e itself, or a clearer Error).
  bool recover(const soci::soci_error& e, int attempt);

  detail::Connection& connection_;
  const std::string sql_;
  const bool one_time_;
  std::optional<soci::statement> statement_;
};

template <class... Elements>
bool PreparedStatement::execute(const Elements&... elements) {
  for (int attempt = 0;; ++attempt) {
    try {
      soci::statement& st = begin();
      (st.exchange(elements), ...);
      return finish();
    } catch (const soci::soci_error& e) {
      if (!recover(e, attempt)) throw;
    }
  }
}

}  // namespace poolscope
