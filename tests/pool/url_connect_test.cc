// Connection URLs end to end: every way of writing a password, in SOCI's form
// and as a URI, connects for real to the test PostgreSQL server as an
// Azure-style user@server role, and what the pool appends to the connect
// string (connect_timeout, fallback_application_name, SQLite's timeout)
// reaches the driver whatever the user's values hold.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <soci/soci.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <string>
#include <thread>

#include "poolscope/pool/errors.h"
#include "poolscope/pool/pool.h"
#include "test_db.h"

namespace poolscope {
namespace {

using namespace std::chrono_literals;
using testing::pg_server;
using testing::TestBackend;
using testing::TestDatabase;

// Everything but letters and digits percent-encoded: the test's own encoder.
std::string encode(const std::string& s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u)) {
      out += c;
    } else {
      out += {'%', kHex[u >> 4], kHex[u & 0xf]};
    }
  }
  return out;
}

// A listening socket on 127.0.0.1 that never answers: a server that hangs.
class SilentServer {
 public:
  SilentServer() : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof addr;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), size) != 0 ||
        ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &size) != 0) {
      throw std::runtime_error("cannot listen on 127.0.0.1");
    }
    port_ = ntohs(addr.sin_port);
  }
  ~SilentServer() { close(); }
  SilentServer(const SilentServer&) = delete;
  SilentServer& operator=(const SilentServer&) = delete;

  int port() const { return port_; }
  // Resets every connection still waiting to be accepted.
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
  int port_ = 0;
};

class UrlConnectTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    db_ = new TestDatabase(TestBackend::kPostgreSQL);
    const std::string role = user();
    std::string quoted;  // an SQL string literal (standard_conforming_strings)
    for (char c : password()) quoted += c == '\'' ? std::string("''") : std::string(1, c);
    *db_->open_session() << "CREATE ROLE \"" + role + "\" LOGIN PASSWORD '" + quoted + "'";
  }
  static void TearDownTestSuite() {
    *db_->open_session() << "DROP ROLE IF EXISTS \"" + user() + "\"";
    delete db_;
    db_ = nullptr;
  }

  static std::string user() { return "app_" + std::to_string(::getpid()) + "@myserver"; }
  // Every character that a URL or a keyword=value text treats specially.
  static std::string password() { return "Zq9 'Se\\cr@t/?#&=%+,:\"Pw"; }
  static std::string dbname() {
    const std::string url = db_->url();  // postgresql://...:port/dbname?sslmode=disable
    const std::size_t slash = url.rfind('/');
    return url.substr(slash + 1, url.find('?') - slash - 1);
  }

  // Connects through a pool and checks who and what the server sees.
  static void expect_connects(const std::string& url) {
    PoolConfig config;
    config.url = url;
    config.name = "urlform";
    config.pool_size = 1;
    config.max_overflow = 0;
    config.checkout_timeout = 10s;
    Pool pool(config);
    EXPECT_EQ(pool.redacted_url().find("Se"), std::string::npos) << pool.redacted_url();
    Lease sql = pool.acquire();
    std::string current_user, application_name;
    *sql << "SELECT current_user, current_setting('application_name')", soci::into(current_user),
        soci::into(application_name);
    EXPECT_EQ(current_user, user()) << pool.redacted_url();
    // Appended by the pool after the URL's own values: it reached libpq intact.
    EXPECT_EQ(application_name, "poolscope:urlform") << pool.redacted_url();
  }

  static TestDatabase* db_;
};

TestDatabase* UrlConnectTest::db_ = nullptr;

TEST_F(UrlConnectTest, ConnectsWithThePasswordInTheUserInfo) {
  const auto& s = pg_server();
  expect_connects("postgresql://" + encode(user()) + ":" + encode(password()) + "@" + s.host + ":" +
                  s.port + "/" + dbname() + "?sslmode=disable");
}

TEST_F(UrlConnectTest, ConnectsWithAzureUserAndPasswordInTheQuery) {
  const auto& s = pg_server();
  expect_connects("postgres://" + s.host + ":" + s.port + "/" + dbname() + "?user=" + user() +
                  "&password=" + encode(password()) + "&sslmode=disable");
}

TEST_F(UrlConnectTest, ConnectsWithAQuotedPasswordInSociForm) {
  const auto& s = pg_server();
  std::string escaped;
  for (char c : password()) {
    if (c == '\'' || c == '\\') escaped += '\\';
    escaped += c;
  }
  expect_connects("postgresql://host=" + s.host + " port=" + s.port + " dbname=" + dbname() +
                  " user=" + user() + " password='" + escaped + "' sslmode=disable");
}

TEST_F(UrlConnectTest, ConnectsWithAnEscapedPasswordEndingInABackslash) {
  // libpq drops a trailing backslash; before, the pool's appended text went
  // into the password and the connect_timeout was lost.
  const auto& s = pg_server();
  std::string escaped;
  for (char c : password()) escaped += {'\\', c};
  expect_connects("postgresql://host=" + s.host + "\tport=" + s.port + " dbname=" + dbname() +
                  " user=" + user() + " sslmode=disable password=" + escaped + "\\");
}

TEST_F(UrlConnectTest, ConnectsToTheSecondOfTwoHosts) {
  const auto& s = pg_server();
  int dead_port = 0;
  {
    SilentServer closed;  // a port nothing listens on once it is closed
    dead_port = closed.port();
  }
  expect_connects("postgresql://" + encode(user()) + ":" + encode(password()) + "@" + s.host + ":" +
                  std::to_string(dead_port) + "," + s.host + ":" + s.port + "/" + dbname() +
                  "?sslmode=disable&target_session_attrs=read-write");
}

TEST_F(UrlConnectTest, ConnectTimeoutHoldsAfterATrailingBackslash) {
  SilentServer server;
  PoolConfig config;
  config.url = "postgresql://host=127.0.0.1 port=" + std::to_string(server.port()) +
               " user=app dbname=app sslmode=disable password=Zq9Secret\\";
  config.pool_size = 1;
  config.max_overflow = 0;
  config.checkout_timeout = 300ms;
  config.connect_timeout = 1s;  // libpq waits at least 2 s
  Pool pool(config);
  std::promise<std::string> outcome;
  const auto start = std::chrono::steady_clock::now();
  std::thread caller([&] {
    try {
      pool.acquire();
      outcome.set_value("connected");
    } catch (const std::exception& e) {
      outcome.set_value(e.what());
    }
  });
  std::future<std::string> result = outcome.get_future();
  const bool returned = result.wait_for(8s) == std::future_status::ready;
  const auto took = std::chrono::steady_clock::now() - start;
  server.close();  // frees a caller stuck in the connect
  caller.join();
  ASSERT_TRUE(returned) << "acquire() still waiting after 8 s: connect_timeout lost";
  EXPECT_LT(took, 2s + 2s) << "connect_timeout (2 s for libpq) + 2 s";
  const std::string message = result.get();
  EXPECT_EQ(message.find("Zq9Secret"), std::string::npos) << message;
}

TEST(UrlSqliteConnectTest, DefaultsReachSociWhateverThePathHolds) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("poolscope url " + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string file = (dir / "my app.db").string();
  for (const std::string& url : {"sqlite3://db=\"" + file + "\"\tsynchronous=normal",
                                 "sqlite://" + encode(file) + "?synchronous=normal"}) {
    PoolConfig config;
    config.url = url;
    config.pool_size = 1;
    config.max_overflow = 0;
    config.sqlite_busy_timeout = 7s;
    Pool pool(config);
    Lease sql = pool.acquire();
    int busy_timeout = 0, synchronous = 0;
    *sql << "PRAGMA busy_timeout", soci::into(busy_timeout);
    *sql << "PRAGMA synchronous", soci::into(synchronous);
    EXPECT_EQ(busy_timeout, 7000) << url;
    EXPECT_EQ(synchronous, 1) << url;  // NORMAL
    EXPECT_TRUE(std::filesystem::exists(file)) << url;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace poolscope
