#include "connection.h"

#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>
#include <soci/sqlite3/soci-sqlite3.h>

namespace poolscope::detail {
namespace {

PGconn* pg(void* native) { return static_cast<PGconn*>(native); }
sqlite_api::sqlite3* lite(void* native) { return static_cast<sqlite_api::sqlite3*>(native); }

}  // namespace

Connection::~Connection() { close(); }

Connection Connection::open(const ConnectionUrl& url, const std::string& connect_string) {
  Connection c;
  c.backend_ = url.backend();
  c.session_ = std::make_unique<soci::session>();
  if (c.backend_ == Backend::kPostgreSQL) {
    c.session_->open(soci::postgresql, connect_string);
    c.native_ = static_cast<soci::postgresql_session_backend*>(c.session_->get_backend())->conn_;
  } else {
    c.session_->open(soci::sqlite3, connect_string);
    c.native_ = static_cast<soci::sqlite3_session_backend*>(c.session_->get_backend())->conn_;
  }
  return c;
}

bool Connection::in_transaction() const noexcept {
  if (backend_ == Backend::kPostgreSQL) {
    const PGTransactionStatusType status = PQtransactionStatus(pg(native_));
    return status == PQTRANS_INTRANS || status == PQTRANS_INERROR;
  }
  return sqlite_api::sqlite3_get_autocommit(lite(native_)) == 0;
}

bool Connection::broken() const noexcept {
  if (backend_ == Backend::kPostgreSQL) {
    if (PQstatus(pg(native_)) != CONNECTION_OK) return true;
    const PGTransactionStatusType status = PQtransactionStatus(pg(native_));
    // ACTIVE: a command still running; UNKNOWN: the connection is bad.
    return status == PQTRANS_ACTIVE || status == PQTRANS_UNKNOWN;
  }
  return false;
}

bool Connection::ping(const std::string& query) noexcept {
  try {
    if (!query.empty()) {
      *session_ << query;
      return !broken();
    }
    if (backend_ == Backend::kPostgreSQL) {
      // An empty query is a full round trip that the server answers with
      // EmptyQueryResponse: the cheapest proof the connection is alive.
      PGresult* result = PQexec(pg(native_), "");
      const bool ok = result != nullptr && PQresultStatus(result) == PGRES_EMPTY_QUERY;
      PQclear(result);
      return ok && !broken();
    }
    return true;  // An open SQLite handle cannot lose its "server".
  } catch (...) {
    return false;
  }
}

void Connection::rollback() { session_->rollback(); }

void Connection::close() noexcept {
  try {
    session_.reset();
  } catch (...) {
    // A backend that throws while closing has nothing left to give back.
  }
  native_ = nullptr;
}

}  // namespace poolscope::detail
