// Database notices as log lines: a PostgreSQL NOTICE or WARNING, or the
// FATAL sent before a disconnect ("terminating connection due to
// administrator command"), goes to poolscope-load's logger with the
// connection it came from, never raw to stderr (libpq's default).
//
// NoticeLog is a pool observer; log_notices_of() does the same for a SOCI
// session opened outside any pool (naive mode). Both are thread-safe: the
// logger is, and they hold nothing else that changes.

#pragma once

#include <soci/soci.h>

#include <memory>
#include <string>

#include "poolscope/pool/observer.h"
#include "poolscope/pool/url.h"

namespace spdlog {
class logger;
}
struct pg_conn;    // libpq's PGconn
struct pg_result;  // libpq's PGresult

namespace poolscope::load {

// A pool's notices, logged: info for NOTICE, INFO, LOG and DEBUG, warn for
// WARNING, error for the rest (ERROR, FATAL, PANIC). The class is
// thread-safe.
class NoticeLog : public PoolObserver {
 public:
  explicit NoticeLog(std::shared_ptr<spdlog::logger> logger);

  unsigned events() const override { return kNoticeEvents; }
  void on_notice(const NoticeEvent& event) override;

 private:
  const std::shared_ptr<spdlog::logger> logger_;
};

// Sends the notices of a PostgreSQL session opened by hand (nothing for
// SQLite) to logger while it lives, naming the connection `source` and
// scrubbing url's password; the destructor gives them back to libpq. Notices
// sent during the connect itself, before this is made, are still libpq's.
// Declare it after the session, so it goes first. Not copyable or movable:
// libpq holds its address. Used on the session's thread, as the session is.
class NoticeRoute {
 public:
  NoticeRoute(soci::session& sql, std::shared_ptr<spdlog::logger> logger, const ConnectionUrl& url,
              std::string source);
  ~NoticeRoute();
  NoticeRoute(const NoticeRoute&) = delete;
  NoticeRoute& operator=(const NoticeRoute&) = delete;

  // libpq's notice receiver; arg is the NoticeRoute.
  static void receive(void* arg, const pg_result* result) noexcept;

 private:
  pg_conn* conn_ = nullptr;  // null for SQLite
  void (*previous_)(void*, const pg_result*) = nullptr;
  const std::shared_ptr<spdlog::logger> logger_;
  const ConnectionUrl& url_;
  const std::string source_;
};

}  // namespace poolscope::load
