// The SQLite driver: SOCI's sqlite3 backend, plus the native handle for the
// transaction check. An open SQLite handle cannot lose its "server", so
// validation only runs a configured query.

#include <soci/soci.h>
#include <soci/sqlite3/soci-sqlite3.h>

#include <string>
#include <string_view>

#include "../driver.h"

namespace poolscope::detail {
namespace {

class SqliteConnection final : public Connection {
 public:
  explicit SqliteConnection(const std::string& connect_string) {
    session_.open(soci::sqlite3, connect_string);
    db_ = static_cast<soci::sqlite3_session_backend*>(session_.get_backend())->conn_;
  }

  bool in_transaction() const noexcept override {
    return sqlite_api::sqlite3_get_autocommit(db_) == 0;
  }

  bool broken() const noexcept override { return false; }

  State state() const noexcept override {
    return in_transaction() ? State::kInTransaction : State::kReady;
  }

  // SQLite runs in this process: a query cannot hang on a server, only wait
  // on a lock for the busy timeout.
  bool validate(std::string_view query, std::int64_t /*deadline_ns*/) noexcept override {
    if (query.empty()) return true;
    try {
      session_ << std::string(query);
      return true;
    } catch (...) {
      return false;
    }
  }

  void rollback() override { session_.rollback(); }

 private:
  sqlite_api::sqlite3* db_ = nullptr;  // owned by session_
};

class SqliteDriver final : public Driver {
 public:
  std::unique_ptr<Connection> open(const std::string& connect_string,
                                   NoticeSink /*notices: SQLite sends none*/) const override {
    return std::make_unique<SqliteConnection>(connect_string);
  }

  bool permanent_failure(std::string_view error) const noexcept override {
    return error.find("unable to open database") != std::string_view::npos ||
           error.find("not a database") != std::string_view::npos;
  }
};

}  // namespace

const Driver& sqlite_driver() {
  static const SqliteDriver driver;
  return driver;
}

}  // namespace poolscope::detail
