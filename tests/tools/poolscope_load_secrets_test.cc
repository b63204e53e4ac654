// poolscope-load and the database password: from DATABASE_URL, PGPASSWORD or
// a PGPASSFILE it never reaches the process's command line (readable by
// every local user in /proc/<pid>/cmdline); given with --db it is masked
// there and warned about. And what the server says on the side (notices)
// goes through the logger, not raw to stderr.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "load_test_support.h"
#include "test_db.h"

namespace {

using poolscope::testing::Child;
using poolscope::testing::command_line_of;
using poolscope::testing::file_shows;
using poolscope::testing::pg_server;
using poolscope::testing::read_file;
using poolscope::testing::run_load;
using poolscope::testing::TempDir;
using poolscope::testing::TestBackend;
using poolscope::testing::TestDatabase;

class PoolscopeLoadSecretsTest : public ::testing::Test {
 protected:
  PoolscopeLoadSecretsTest() : db_(TestBackend::kPostgreSQL), dir_("poolscope-load-secrets") {
    const auto sql = db_.open_session();
    *sql << "SELECT current_database()", soci::into(dbname_);
  }

  const std::string& password() const { return pg_server().password; }
  std::string url_without_password() const {
    const auto& s = pg_server();
    return "postgresql://" + s.user + "@" + s.host + ":" + s.port + "/" + dbname_ +
           "?sslmode=disable";
  }

  // Starts poolscope-load for a few seconds with env and args, waits until it
  // serves (so it runs), and returns its command line as /proc shows it.
  std::string start_and_read_command_line(const std::map<std::string, std::string>& env,
                                          std::vector<std::string> args = {}) {
    std::vector<std::string> argv = {
        POOLSCOPE_LOAD,  "--duration", "2",           "--threads", "1",
        "--no-progress", "--metrics",  "127.0.0.1:0", "--json",    dir_ / "out.json"};
    argv.insert(argv.end(), args.begin(), args.end());
    child_ = std::make_unique<Child>(argv, dir_ / "out.txt", dir_ / "err.txt", env);
    EXPECT_TRUE(file_shows(dir_ / "err.txt", "serving http://")) << err();
    return command_line_of(child_->pid());
  }
  std::string err() const { return read_file(dir_ / "err.txt"); }
  nlohmann::json json() const {
    return nlohmann::json::parse(read_file(dir_ / "out.json"), nullptr, false);
  }

  TestDatabase db_;
  TempDir dir_;
  std::string dbname_;
  std::unique_ptr<Child> child_;
};

TEST_F(PoolscopeLoadSecretsTest, PasswordInDatabaseUrlIsNotInTheCommandLine) {
  const std::string cmdline = start_and_read_command_line({{"DATABASE_URL", db_.url()}});
  EXPECT_NE(cmdline.find("poolscope-load --duration 2"), std::string::npos) << cmdline;
  EXPECT_EQ(cmdline.find(password()), std::string::npos) << cmdline;
  ASSERT_EQ(child_->wait(), 0) << err();
  EXPECT_GT(json()["renders"].get<int>(), 0);
  EXPECT_EQ(json()["url"].get<std::string>().find(password()), std::string::npos);
  EXPECT_EQ(err().find(password()), std::string::npos) << err();
  EXPECT_EQ(err().find("visible to other local users"), std::string::npos) << "nothing to warn of";
}

TEST_F(PoolscopeLoadSecretsTest, UrlWithoutAPasswordTakesItFromPgpassword) {
  const std::string cmdline = start_and_read_command_line(
      {{"DATABASE_URL", url_without_password()}, {"PGPASSWORD", password()}});
  EXPECT_EQ(cmdline.find(password()), std::string::npos) << cmdline;
  ASSERT_EQ(child_->wait(), 0) << err();
  EXPECT_GT(json()["renders"].get<int>(), 0);
  EXPECT_EQ(err().find(password()), std::string::npos) << err();
  // Without it the same URL is refused: the password came from PGPASSWORD.
  const poolscope::testing::LoadRun refused =
      run_load("--duration 1", true, "DATABASE_URL='" + url_without_password() + "'");
  EXPECT_EQ(refused.exit_code, 1) << refused.err;
}

TEST_F(PoolscopeLoadSecretsTest, UrlWithoutAPasswordTakesItFromAPgpassfile) {
  const auto& s = pg_server();
  const std::string pgpass = dir_ / "pgpass";
  std::ofstream(pgpass) << s.host << ":" << s.port << ":" << dbname_ << ":" << s.user << ":"
                        << password() << "\n";
  ASSERT_EQ(::chmod(pgpass.c_str(), 0600), 0);  // libpq ignores a file others can read
  const std::string cmdline = start_and_read_command_line(
      {{"DATABASE_URL", url_without_password()}, {"PGPASSFILE", pgpass}});
  EXPECT_EQ(cmdline.find(password()), std::string::npos) << cmdline;
  ASSERT_EQ(child_->wait(), 0) << err();
  EXPECT_GT(json()["renders"].get<int>(), 0);
}

TEST_F(PoolscopeLoadSecretsTest, PasswordGivenWithDbIsMaskedInTheCommandLineAndWarnedAbout) {
  const std::string cmdline = start_and_read_command_line({}, {"--db", db_.url()});
  EXPECT_EQ(cmdline.find(password()), std::string::npos) << cmdline;
  EXPECT_NE(cmdline.find(pg_server().user + ":" + std::string(password().size(), '*') + "@"),
            std::string::npos)
      << cmdline;
  ASSERT_EQ(child_->wait(), 0) << err();
  EXPECT_NE(err().find("warning: the password in --db is visible to other local users"),
            std::string::npos)
      << err();
  EXPECT_EQ(err().find(password()), std::string::npos) << err();
}

TEST_F(PoolscopeLoadSecretsTest, NoticesOfNaiveConnectionsGoThroughTheLogger) {
  {
    // Every statement in this database now sends its text back as a LOG notice.
    const auto sql = db_.open_session();
    *sql << "ALTER DATABASE " + dbname_ + " SET client_min_messages = log";
    *sql << "ALTER DATABASE " + dbname_ + " SET log_statement = 'all'";
  }
  const poolscope::testing::LoadRun run =
      run_load("--mode naive --threads 1 --duration 0.3 --db '" + db_.url() + "'");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  // The extended protocol's form: "execute <unnamed>", no named statement.
  EXPECT_NE(run.err.find("Database notice (naive connection): LOG: execute <unnamed>: SELECT "
                         "setting_value FROM account_settings"),
            std::string::npos)
      << run.err;
  // libpq's default would print "LOG:  execute ..." on a line of its own.
  EXPECT_EQ(run.err.find("\nLOG:  execute <unnamed>: SELECT setting_value"), std::string::npos)
      << run.err;
}

}  // namespace
