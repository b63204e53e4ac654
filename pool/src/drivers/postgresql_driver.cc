// The PostgreSQL driver: SOCI's postgresql backend, plus libpq for what SOCI
// does not expose. Validation runs the ping through libpq's non-blocking
// interface (PQsendQuery, then poll() on PQsocket until the deadline), so a
// server that stops answering (SIGSTOP, a network partition) costs the
// caller at most what is left of its deadline, never libpq's own wait.

#include <libpq-fe.h>
#include <poll.h>
#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <string>
#include <string_view>

#include "../clock.h"
#include "../driver.h"

namespace poolscope::detail {
namespace {

class PostgresConnection final : public Connection {
 public:
  PostgresConnection(const std::string& connect_string, NoticeSink notices)
      : notices_(std::move(notices)) {
    session_.open(soci::postgresql, connect_string);
    conn_ = static_cast<soci::postgresql_session_backend*>(session_.get_backend())->conn_;
    PQsetNoticeReceiver(conn_, &PostgresConnection::receive, this);
  }

  bool in_transaction() const noexcept override {
    const PGTransactionStatusType status = PQtransactionStatus(conn_);
    return status == PQTRANS_INTRANS || status == PQTRANS_INERROR;
  }

  bool broken() const noexcept override {
    if (poisoned_ || PQstatus(conn_) != CONNECTION_OK) return true;
    const PGTransactionStatusType status = PQtransactionStatus(conn_);
    // ACTIVE: a command still running; UNKNOWN: the connection is bad.
    return status == PQTRANS_ACTIVE || status == PQTRANS_UNKNOWN;
  }

  State state() const noexcept override {
    if (poisoned_ || PQstatus(conn_) != CONNECTION_OK) return State::kBroken;
    switch (PQtransactionStatus(conn_)) {
      case PQTRANS_IDLE:
        return State::kReady;
      case PQTRANS_INTRANS:
      case PQTRANS_INERROR:
        return State::kInTransaction;
      default:  // ACTIVE: a command still running; UNKNOWN: the connection is bad
        return State::kBroken;
    }
  }

  bool validate(std::string_view query, std::int64_t deadline_ns) noexcept override {
    if (broken()) return false;
    // First what the server sent while the connection sat idle: a notice, or
    // the FATAL that precedes a disconnect ("terminating connection due to
    // administrator command"). Parsing it routes it to the notice sink, and
    // tells a dead connection from a live one without a round trip.
    const bool read = PQconsumeInput(conn_) != 0;
    static_cast<void>(PQisBusy(conn_));  // parses what was read
    if (!read || broken()) {
      poisoned_ = true;
      return false;
    }
    if (PQsetnonblocking(conn_, 1) != 0) return false;
    // An empty query is a full round trip that the server answers with
    // EmptyQueryResponse: the cheapest proof the connection is alive.
    const bool ok = round_trip(std::string(query), deadline_ns);
    if (!ok) {
      poisoned_ = true;  // a command may still be in flight: never reuse it
      return false;
    }
    return PQsetnonblocking(conn_, 0) == 0 && !broken();
  }

  void rollback() override { session_.rollback(); }

 private:
  static void receive(void* self, const PGresult* result) noexcept {
    auto* conn = static_cast<PostgresConnection*>(self);
    if (!conn->notices_) return;
    const char* severity = PQresultErrorField(result, PG_DIAG_SEVERITY);
    const char* message = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
    std::string_view text = message != nullptr ? message : PQresultErrorMessage(result);
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
    try {
      conn->notices_(severity != nullptr ? severity : "NOTICE", text);
    } catch (...) {
      // A sink must not throw; if it does, the notice is lost, nothing else.
    }
  }

  // Waits until the socket is ready for events or the deadline passes.
  bool wait(short events, std::int64_t deadline_ns) const noexcept {
    for (;;) {
      int timeout_ms = -1;
      if (deadline_ns != INT64_MAX) {
        const std::int64_t left = deadline_ns - steady_ns();
        if (left <= 0) return false;
        timeout_ms =
            static_cast<int>(std::min<std::int64_t>((left + 999'999) / 1'000'000, INT_MAX));
      }
      pollfd fd{PQsocket(conn_), events, 0};
      if (fd.fd < 0) return false;
      const int n = ::poll(&fd, 1, timeout_ms);
      if (n > 0) return true;
      if (n == 0 && deadline_ns != INT64_MAX && steady_ns() >= deadline_ns) return false;
      // EINTR or an early wake: go round again.
    }
  }

  // Sends query and reads every result, within the deadline. True when each
  // result is a success (an empty query's answer included).
  bool round_trip(const std::string& query, std::int64_t deadline_ns) noexcept {
    if (PQsendQuery(conn_, query.c_str()) == 0) return false;
    for (;;) {  // flush what libpq could not write at once
      const int flushed = PQflush(conn_);
      if (flushed == 0) break;
      if (flushed < 0 || !wait(POLLOUT | POLLIN, deadline_ns)) return false;
      if (PQconsumeInput(conn_) == 0) return false;
    }
    bool ok = true;
    for (;;) {
      while (PQisBusy(conn_) != 0) {
        if (!wait(POLLIN, deadline_ns) || PQconsumeInput(conn_) == 0) return false;
      }
      PGresult* result = PQgetResult(conn_);
      if (result == nullptr) break;
      const ExecStatusType status = PQresultStatus(result);
      ok = ok &&
           (status == PGRES_EMPTY_QUERY || status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK);
      PQclear(result);
    }
    return ok;
  }

  NoticeSink notices_;
  PGconn* conn_ = nullptr;  // owned by session_
  bool poisoned_ = false;
};

class PostgresDriver final : public Driver {
 public:
  std::unique_ptr<Connection> open(const std::string& connect_string,
                                   NoticeSink notices) const override {
    return std::make_unique<PostgresConnection>(connect_string, std::move(notices));
  }

  bool permanent_failure(std::string_view error) const noexcept override {
    // libpq gives no SQLSTATE for a failed connect, only its text (in the
    // server's lc_messages: English unless configured otherwise).
    for (const std::string_view permanent :
         {"password authentication failed", "no pg_hba.conf entry", "does not exist",
          "no password supplied", "authentication failed", "invalid connection option",
          "server does not support SSL", "invalid sslmode value", "invalid port number"}) {
      if (error.find(permanent) != std::string_view::npos) return true;
    }
    return false;
  }
};

}  // namespace

const Driver& postgresql_driver() {
  static const PostgresDriver driver;
  return driver;
}

}  // namespace poolscope::detail
