// poolscope-load through a real PgBouncer 1.18 (tests/fixtures/pgbouncer.sh)
// in front of the test PostgreSQL, in session and in transaction pooling
// mode: --processes 4 runs every mode with 0 errors (no named statement, no
// session state across transactions when --transaction-pooler says a
// transaction pooler is in front).

#include <gtest/gtest.h>

#include <cctype>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>

#include "load_test_support.h"
#include "test_db.h"

namespace {

using poolscope::testing::LoadRun;
using poolscope::testing::run_load;
using poolscope::testing::TestBackend;
using poolscope::testing::TestDatabase;

// The fixture's PgBouncer port for a pooling mode ("session", "transaction").
std::string bouncer_port(const std::string& pooling) {
  return poolscope::testing::read_env_file("POOLSCOPE_PG_ENV",
                                           "pgbouncer")["pgbouncer_" + pooling + "_port"];
}

// url, with the server's port replaced by PgBouncer's.
std::string through_bouncer(const std::string& url, const std::string& pooling) {
  const std::string server = ":" + poolscope::testing::pg_server().port + "/";
  const std::size_t at = url.find(server);
  if (at == std::string::npos) return url;
  return url.substr(0, at) + ":" + bouncer_port(pooling) + "/" + url.substr(at + server.size());
}

class PoolscopeLoadPgBouncerTest
    : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {
 protected:
  PoolscopeLoadPgBouncerTest() : db_(TestBackend::kPostgreSQL) {}
  TestDatabase db_;
};

TEST_P(PoolscopeLoadPgBouncerTest, FourProcessesRunEveryModeWithoutErrors) {
  const auto& [pooling, mode] = GetParam();
  const std::string url = through_bouncer(db_.url(), pooling);
  ASSERT_NE(url, db_.url()) << "the URL goes through PgBouncer";
  // A naive render opens 60 connections, each a SCRAM handshake with
  // PgBouncer: one thread per process is slow enough.
  const std::string load =
      mode == "naive" ? " --threads 1 --duration 0.3" : " --threads 2 --pool-size 2 --duration 1";
  const std::string pooler = pooling == "transaction" ? " --transaction-pooler" : "";
  const LoadRun run =
      run_load("--processes 4 --mode " + mode + load + pooler, true, "DATABASE_URL='" + url + "'");
  EXPECT_EQ(run.exit_code, 0) << run.err;
  const nlohmann::json& j = run.json;
  EXPECT_EQ(j["processes"], 4);
  EXPECT_EQ(j["errors"], 0) << run.err;
  EXPECT_EQ(j["failed"], 0);
  EXPECT_GT(j["renders"].get<std::uint64_t>(), 0u);
  ASSERT_EQ(j["per_process"].size(), 4u);
  for (const nlohmann::json& p : j["per_process"]) {
    EXPECT_EQ(p["errors"], 0) << p.dump();
    EXPECT_GT(p["renders"].get<std::uint64_t>(), 0u) << p.dump();
    EXPECT_EQ(p["transaction_pooler"], pooling == "transaction");
    EXPECT_NE(p["url"].get<std::string>().find("127.0.0.1:" + bouncer_port(pooling) + "/"),
              std::string::npos)
        << p["url"];
  }
  EXPECT_EQ(run.err.find("prepared statement"), std::string::npos) << run.err;
  EXPECT_EQ(run.err.find(poolscope::testing::pg_server().password), std::string::npos);
}

// "TransactionPoolingCachedMode".
std::string test_name(const ::testing::TestParamInfo<std::tuple<std::string, std::string>>& info) {
  std::string pooling = std::get<0>(info.param);
  std::string mode = std::get<1>(info.param);
  pooling[0] = static_cast<char>(std::toupper(pooling[0]));
  mode[0] = static_cast<char>(std::toupper(mode[0]));
  return pooling + "Pooling" + mode + "Mode";
}

INSTANTIATE_TEST_SUITE_P(PoolingModes, PoolscopeLoadPgBouncerTest,
                         ::testing::Combine(::testing::Values("session", "transaction"),
                                            ::testing::Values("naive", "pool", "reuse", "cached")),
                         test_name);

}  // namespace
