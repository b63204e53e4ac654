// poolscope-load end to end: run the program, read its JSON, check what a
// user is promised (the counts per mode, churn in pool mode and not in reuse
// mode, the leak report and its return, clean failures).

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "test_db.h"

namespace {

using poolscope::testing::TestBackend;
using poolscope::testing::TestDatabase;

struct LoadRun {
  int exit_code = -1;
  nlohmann::json json;
  std::string err;  // stderr
};

LoadRun run_load(const std::string& args) {
  const auto err_file = std::filesystem::temp_directory_path() /
                        ("poolscope-load-test-" + std::to_string(::getpid()) + ".err");
  const std::string command =
      std::string(POOLSCOPE_LOAD) + " --no-progress --json - " + args + " 2>" + err_file.string();
  LoadRun run;
  std::string out;
  if (FILE* pipe = ::popen(command.c_str(), "r")) {
    char buffer[4096];
    for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) out.append(buffer, n);
    const int status = ::pclose(pipe);
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  std::ifstream err(err_file);
  run.err.assign(std::istreambuf_iterator<char>(err), {});
  std::filesystem::remove(err_file);
  if (!out.empty()) run.json = nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false);
  return run;
}

class PoolscopeLoadTest : public ::testing::TestWithParam<TestBackend> {
 protected:
  void SetUp() override { db_ = std::make_unique<TestDatabase>(GetParam()); }
  std::string db() const { return "--db '" + db_->url() + "'"; }
  std::unique_ptr<TestDatabase> db_;
};

TEST_P(PoolscopeLoadTest, PoolModeTakesSixtyCheckoutsPerRenderAndWarnsOfChurn) {
  const LoadRun run = run_load(db() + " --mode pool --threads 2 --duration 2.5");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const nlohmann::json& j = run.json;
  for (const char* field : {"mode", "backend", "threads", "duration_s", "renders", "renders_per_s",
                            "checkouts_per_render", "reuses_per_render", "connections_opened",
                            "acquire_p50_s", "acquire_p99_s", "timeouts", "errors", "sites"}) {
    EXPECT_TRUE(j.contains(field)) << field;
  }
  EXPECT_EQ(j["mode"], "pool");
  EXPECT_EQ(j["backend"], GetParam() == TestBackend::kSqlite ? "sqlite" : "postgresql");
  EXPECT_GT(j["renders"].get<int>(), 0);
  EXPECT_DOUBLE_EQ(j["checkouts_per_render"].get<double>(), 60.0);
  EXPECT_DOUBLE_EQ(j["reuses_per_render"].get<double>(), 0.0);
  EXPECT_LE(j["connections_opened"].get<int>(), 2);
  EXPECT_EQ(j["errors"], 0);
  EXPECT_GE(j["churn_warnings"].get<int>(), 1) << run.err;
  EXPECT_NE(run.err.find("Session churn at widget.cc:read():"), std::string::npos) << run.err;
  EXPECT_EQ(j["sites"][0]["acquires_per_render"].get<double>(), 60.0);
  EXPECT_NE(run.err.find("Database session created (id=1, pool=load, url="), std::string::npos);
  if (GetParam() == TestBackend::kPostgreSQL) {
    EXPECT_EQ(run.err.find(poolscope::testing::pg_server().password), std::string::npos);
  }
}

TEST_P(PoolscopeLoadTest, ReuseModeTakesOneCheckoutPerRenderAndDoesNotChurn) {
  const LoadRun run = run_load(db() + " --mode reuse --threads 2 --duration 2.5");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const nlohmann::json& j = run.json;
  EXPECT_DOUBLE_EQ(j["checkouts_per_render"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(j["reuses_per_render"].get<double>(), 60.0);
  EXPECT_EQ(j["churn_warnings"], 0) << run.err;
  EXPECT_EQ(run.err.find("Session churn"), std::string::npos) << run.err;
}

TEST_P(PoolscopeLoadTest, NaiveModeOpensAConnectionPerRead) {
  const LoadRun run = run_load(db() + " --mode naive --threads 2 --duration 1");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const nlohmann::json& j = run.json;
  EXPECT_DOUBLE_EQ(j["checkouts_per_render"].get<double>(), 60.0);
  EXPECT_EQ(j["connections_opened"].get<std::uint64_t>(), 60 * j["renders"].get<std::uint64_t>());
}

TEST_P(PoolscopeLoadTest, LeakScenarioReportsTheHeldLeaseAndItsReturn) {
  const LoadRun run = run_load(db() + " --scenario leak --leak-threshold 0.5 --threads 1 --duration 1");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.json["scenario"], "leak");
  EXPECT_EQ(run.json["leaks_reported"], 1) << run.err;
  EXPECT_EQ(run.json["leaks_returned"], 1) << run.err;
  EXPECT_NE(run.err.find("Possible session leak: connection "), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("by widget.cc:slow_export():"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("(slow-export), past leak_threshold 500.0 ms"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("Previously reported leaked lease was returned"), std::string::npos);
}

TEST_P(PoolscopeLoadTest, CachedModeTakesNoCheckoutsOnceWarmAndCountsTheSessionsItSpares) {
  const LoadRun run = run_load(db() + " --mode cached --threads 2 --duration 1.5");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const nlohmann::json& j = run.json;
  EXPECT_LE(j["checkouts_per_render"].get<double>(), 0.01);
  EXPECT_GT(j["renders"].get<std::uint64_t>(), 1000u);
  EXPECT_NEAR(j["sessions_avoided_per_render"].get<double>(), 60.0, 0.1);
  ASSERT_EQ(j["caches"].size(), 2u);
  EXPECT_EQ(j["caches"][0]["cache"], "accounts");
  EXPECT_EQ(j["caches"][0]["loads"], 5) << "one account object per account";
  EXPECT_EQ(j["caches"][1]["cache"], "account_settings");
  EXPECT_EQ(j["caches"][1]["loads"], 5) << "one settings query per account";
  EXPECT_EQ(j["churn_warnings"], 0);
}

TEST_P(PoolscopeLoadTest, SettingsWritesUnderLoadNeverYieldAStaleRead) {
  const LoadRun run =
      run_load(db() + " --mode cached --scenario settings-write --write-every 5 --threads 3 --duration 2");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const nlohmann::json& j = run.json;
  EXPECT_EQ(j["scenario"], "settings-write");
  EXPECT_GT(j["writes"].get<int>(), 20);
  EXPECT_EQ(j["stale_reads"], 0);
  EXPECT_GT(j["caches"][0]["evictions_invalidated"].get<int>(), 0) << "saves evict account objects";
}

TEST_P(PoolscopeLoadTest, OversubscribeReportsWaitsAndKeepsThePoolsInvariants) {
  const LoadRun run = run_load(db() + " --scenario oversubscribe --threads 16 --pool-size 2 --max-overflow 1 --duration 1.5");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const nlohmann::json& j = run.json;
  EXPECT_EQ(j["scenario"], "oversubscribe");
  EXPECT_EQ(j["threads"], 16);
  EXPECT_GT(j["waits"].get<std::uint64_t>(), 0u);
  EXPECT_GT(j["acquire_p99_s"].get<double>(), 0.0);
  EXPECT_TRUE(j.contains("timeouts"));
  EXPECT_LE(j["max_open_seen"].get<int>(), 3);
  EXPECT_GT(j["max_pending_seen"].get<int>(), 0);
  EXPECT_TRUE(j["invariants_ok"].get<bool>()) << j["invariant_violations"].dump();
  EXPECT_NE(run.err.find("pool invariants        held"), std::string::npos) << run.err;
}

TEST_P(PoolscopeLoadTest, CompareRunsEveryModeAndReportsRatiosAgainstPool) {
  const LoadRun run = run_load(db() + " --compare --threads 2 --duration 0.6");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const nlohmann::json& runs = run.json["compare"];
  ASSERT_EQ(runs.size(), 4u);
  const char* modes[] = {"naive", "pool", "reuse", "cached"};
  for (int i = 0; i < 4; ++i) EXPECT_EQ(runs[i]["mode"], modes[i]);
  EXPECT_DOUBLE_EQ(runs[0]["checkouts_per_render"].get<double>(), 60.0);
  EXPECT_DOUBLE_EQ(runs[1]["checkouts_per_render"].get<double>(), 60.0);
  EXPECT_DOUBLE_EQ(runs[2]["checkouts_per_render"].get<double>(), 1.0);
  EXPECT_LE(runs[3]["checkouts_per_render"].get<double>(), 0.01);
  const nlohmann::json& ratios = run.json["ratios"];
  EXPECT_DOUBLE_EQ(ratios["pool"]["renders_per_s_vs_pool"].get<double>(), 1.0);
  EXPECT_GT(ratios["cached"]["renders_per_s_vs_pool"].get<double>(), 1.0);
  EXPECT_NE(run.err.find("poolscope-load --compare: widget scenario"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Backends, PoolscopeLoadTest,
                         ::testing::Values(TestBackend::kSqlite, TestBackend::kPostgreSQL),
                         [](const auto& p) { return poolscope::testing::backend_name(p.param); });

TEST(PoolscopeLoadFailureTest, UnreachableDatabaseExitsNonZeroShowingOnlyTheRedactedUrl) {
  const LoadRun run = run_load("--db postgresql://app:s3cret@127.0.0.1:1/app --duration 1");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("cannot connect to postgresql://app:***@127.0.0.1:1/app"), std::string::npos)
      << run.err;
  EXPECT_EQ(run.err.find("s3cret"), std::string::npos) << run.err;
}

TEST(PoolscopeLoadFailureTest, BadOptionsAreUsageErrors) {
  EXPECT_EQ(run_load("--threads 0").exit_code, 2);
  EXPECT_EQ(run_load("--mode sideways").exit_code, 2);
  EXPECT_EQ(run_load("--compare --mode reuse").exit_code, 2);
  const LoadRun leak_naive = run_load("--scenario leak --mode naive --db sqlite:///tmp/poolscope-x.db");
  EXPECT_EQ(leak_naive.exit_code, 2);
  EXPECT_NE(leak_naive.err.find("the leak scenario needs a pool"), std::string::npos);
}

}  // namespace
