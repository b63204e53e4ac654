#include "test_db.h"

#include <soci/postgresql/soci-postgresql.h>
#include <soci/sqlite3/soci-sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <random>
#include <stdexcept>

#include "test_util.h"

namespace poolscope::testing {
namespace {

std::string unique_suffix() {
  static std::atomic<int> counter{0};
  static const unsigned seed = std::random_device{}();
  return std::to_string(::getpid()) + "_" + std::to_string(seed % 100000) + "_" +
         std::to_string(counter.fetch_add(1));
}

std::string admin_connect_string(const PgServer& s, const std::string& dbname) {
  return "host=" + s.host + " port=" + s.port + " user=" + s.user + " password='" + s.password +
         "' dbname=" + dbname + " connect_timeout=10";
}

}  // namespace

std::string backend_name(TestBackend backend) {
  return backend == TestBackend::kSqlite ? "SQLite" : "PostgreSQL";
}

std::string PgServer::url(const std::string& dbname) const {
  return "postgresql://" + user + ":" + password + "@" + host + ":" + port + "/" + dbname +
         "?sslmode=disable";
}

const PgServer& pg_server() {
  static const PgServer server = [] {
    std::map<std::string, std::string> values = read_env_file("POOLSCOPE_PG_ENV", "postgres");
    return PgServer{values["host"], values["port"], values["user"], values["password"]};
  }();
  return server;
}

TestDatabase::TestDatabase(TestBackend backend) : backend_(backend) {
  if (backend == TestBackend::kSqlite) {
    sqlite_dir_ = std::filesystem::temp_directory_path() / ("poolscope_test_" + unique_suffix());
    std::filesystem::create_directories(sqlite_dir_);
    const std::string file = (sqlite_dir_ / "test.db").string();
    url_ = "sqlite://" + file;
    soci_backend_ = "sqlite3";
    connect_string_ = "db=" + file + " timeout=5";
  } else {
    const PgServer& server = pg_server();
    pg_dbname_ = "t_" + unique_suffix();
    soci::session admin(soci::postgresql, admin_connect_string(server, "postgres"));
    admin << "CREATE DATABASE " + pg_dbname_;
    url_ = server.url(pg_dbname_);
    soci_backend_ = "postgresql";
    connect_string_ = admin_connect_string(server, pg_dbname_);
  }
}

TestDatabase::~TestDatabase() {
  try {
    if (backend_ == TestBackend::kSqlite) {
      std::filesystem::remove_all(sqlite_dir_);
    } else {
      soci::session admin(soci::postgresql, admin_connect_string(pg_server(), "postgres"));
      admin << "DROP DATABASE IF EXISTS " + pg_dbname_ + " WITH (FORCE)";
    }
  } catch (...) {
    // The server goes away with the fixture anyway.
  }
}

std::unique_ptr<soci::session> TestDatabase::open_session() const {
  if (backend_ == TestBackend::kSqlite) {
    return std::make_unique<soci::session>(soci::sqlite3, connect_string_);
  }
  return std::make_unique<soci::session>(soci::postgresql, connect_string_);
}

PoolConfig TestDatabase::config(std::size_t pool_size, std::size_t max_overflow) const {
  PoolConfig config;
  config.url = url_;
  config.pool_size = pool_size;
  config.max_overflow = max_overflow;
  config.checkout_timeout = std::chrono::milliseconds(2000);
  return config;
}

void pg_terminate_backend(int pid) {
  soci::session admin(soci::postgresql, admin_connect_string(pg_server(), "postgres"));
  int terminated = 0;
  admin << "SELECT count(*) FROM (SELECT pg_terminate_backend(:pid)) t", soci::use(pid),
      soci::into(terminated);
  // pg_terminate_backend signals; wait until the backend is gone.
  for (int i = 0; i < 200; ++i) {
    int alive = 0;
    admin << "SELECT count(*) FROM pg_stat_activity WHERE pid = :pid", soci::use(pid),
        soci::into(alive);
    if (alive == 0) return;
    ::usleep(10'000);
  }
  throw std::runtime_error("backend " + std::to_string(pid) + " did not terminate");
}

int pg_backend_pid(soci::session& sql) {
  int pid = 0;
  sql << "SELECT pg_backend_pid()", soci::into(pid);
  return pid;
}

}  // namespace poolscope::testing
