// Test databases for the suites: a fresh SQLite file or a fresh PostgreSQL
// database per test, on the throwaway server that the CTest fixture
// (tests/fixtures/pg_server.sh) starts. A PostgreSQL test never skips: when
// the server is missing the test fails, saying how to start it.

#pragma once

#include <soci/soci.h>

#include <filesystem>
#include <memory>
#include <ostream>
#include <string>

#include "poolscope/pool/pool_config.h"

namespace poolscope::testing {

enum class TestBackend { kSqlite, kPostgreSQL };

// "SQLite" or "PostgreSQL", for parameterised test names.
std::string backend_name(TestBackend backend);
inline void PrintTo(TestBackend backend, std::ostream* os) { *os << backend_name(backend); }

// Where the fixture's PostgreSQL listens, from the file named by
// $POOLSCOPE_PG_ENV. Throws std::runtime_error when it is not running.
struct PgServer {
  std::string host;
  std::string port;
  std::string user;
  std::string password;

  // postgresql://user:password@host:port/dbname?sslmode=disable
  std::string url(const std::string& dbname) const;
};
const PgServer& pg_server();

// A fresh, empty database, removed again by the destructor.
class TestDatabase {
 public:
  explicit TestDatabase(TestBackend backend);
  ~TestDatabase();
  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;

  TestBackend backend() const { return backend_; }

  // A URL for poolscope (URI form; with the password on PostgreSQL).
  const std::string& url() const { return url_; }

  // A plain SOCI session on the same database, outside any pool.
  std::unique_ptr<soci::session> open_session() const;

  // A PoolConfig on this database with test-friendly timeouts.
  PoolConfig config(std::size_t pool_size = 2, std::size_t max_overflow = 0) const;

 private:
  TestBackend backend_;
  std::string url_;
  std::string soci_backend_;
  std::string connect_string_;
  std::filesystem::path sqlite_dir_;
  std::string pg_dbname_;
};

// Kills a PostgreSQL backend from outside, as a DBA or a failover would.
void pg_terminate_backend(int pid);

// pg_backend_pid() of a session.
int pg_backend_pid(soci::session& sql);

}  // namespace poolscope::testing
