// Many poolscope-load processes against one database: started at once they
// all seed it without errors, and --processes N runs N worker processes,
// each with its own pool and caches, with one combined summary and JSON.

#include <gtest/gtest.h>
#include <signal.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "load_test_support.h"
#include "test_db.h"

namespace {

using poolscope::testing::Child;
using poolscope::testing::file_shows;
using poolscope::testing::LoadRun;
using poolscope::testing::read_file;
using poolscope::testing::run_load;
using poolscope::testing::TempDir;
using poolscope::testing::TestBackend;
using poolscope::testing::TestDatabase;

class PoolscopeLoadProcessesTest : public ::testing::TestWithParam<TestBackend> {
 protected:
  void SetUp() override { db_ = std::make_unique<TestDatabase>(GetParam()); }
  std::string db() const { return "--db '" + db_->url() + "'"; }
  std::unique_ptr<TestDatabase> db_;
};

TEST_P(PoolscopeLoadProcessesTest, ProcessesStartedAtOnceAllSeedAnEmptyDatabase) {
  // The run: 8 processes, pool mode, a pool of 4 each, started
  // together on a database without the tables (5 of 8 failed seeding).
  const TempDir dir("poolscope-load-seed");
  std::vector<std::unique_ptr<Child>> children;
  for (int i = 0; i < 8; ++i) {
    children.push_back(std::make_unique<Child>(
        std::vector<std::string>{POOLSCOPE_LOAD, "--mode", "pool", "--pool-size", "4", "--threads",
                                 "1", "--duration", "0.5", "--no-progress"},
        dir / ("out" + std::to_string(i)), dir / ("err" + std::to_string(i)),
        std::map<std::string, std::string>{{"DATABASE_URL", db_->url()}}));
  }
  for (int i = 0; i < 8; ++i) {
    const std::string err = read_file(dir / ("err" + std::to_string(i)));
    EXPECT_EQ(children[static_cast<std::size_t>(i)]->wait(), 0) << "process " << i << "\n" << err;
    EXPECT_EQ(err.find("duplicate key"), std::string::npos) << err;
  }
  // And they left the seed's rows, once each.
  const auto sql = db_->open_session();
  int settings = 0, transactions = 0;
  *sql << "SELECT count(*) FROM account_settings", soci::into(settings);
  *sql << "SELECT count(*) FROM transactions", soci::into(transactions);
  EXPECT_EQ(settings, 20);
  EXPECT_EQ(transactions, 25);
}

TEST_P(PoolscopeLoadProcessesTest, ProcessesHaveTheirOwnPoolsAndCachesAndOneCombinedReport) {
  const LoadRun run =
      run_load(db() + " --processes 3 --mode cached --threads 2 --pool-size 2 --duration 1");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const nlohmann::json& j = run.json;
  for (const char* field : {"processes", "database_loads", "distinct_keys", "redis_hits", "errors",
                            "renders", "renders_per_s", "connections_opened", "checkouts",
                            "render_latency_p99_s", "per_process"}) {
    EXPECT_TRUE(j.contains(field)) << field;
  }
  EXPECT_EQ(j["processes"], 3);
  const nlohmann::json& per_process = j["per_process"];
  ASSERT_EQ(per_process.size(), 3u);
  std::set<int> pids;
  std::uint64_t renders = 0, loads = 0, checkouts = 0, opened = 0;
  double rate = 0;
  for (const nlohmann::json& p : per_process) {
    pids.insert(p["pid"].get<int>());
    EXPECT_EQ(p["exit_status"], 0);
    EXPECT_GT(p["renders"].get<std::uint64_t>(), 0u);
    // Its own caches: each process loads every account once.
    EXPECT_EQ(p["database_loads"], 5) << p.dump();
    renders += p["renders"].get<std::uint64_t>();
    loads += p["database_loads"].get<std::uint64_t>();
    checkouts += p["checkouts"].get<std::uint64_t>();
    opened += p["connections_opened"].get<std::uint64_t>();
    rate += p["renders_per_s"].get<double>();
  }
  EXPECT_EQ(pids.size(), 3u) << "three processes";
  EXPECT_EQ(pids.count(::getpid()), 0u);
  EXPECT_EQ(j["renders"], renders);
  EXPECT_EQ(j["database_loads"], loads);
  EXPECT_EQ(j["checkouts"], checkouts);
  EXPECT_EQ(j["connections_opened"], opened);
  EXPECT_DOUBLE_EQ(j["renders_per_s"].get<double>(), rate);
  EXPECT_EQ(j["distinct_keys"], 5);
  EXPECT_DOUBLE_EQ(j["database_loads_per_key"].get<double>(), 3.0) << "one load per process";
  EXPECT_EQ(j["redis_hits"], 0);
  EXPECT_EQ(j["errors"], 0);
  EXPECT_TRUE(j["invariants_ok"].get<bool>());
  EXPECT_NE(run.err.find("3 processes x 2 threads"), std::string::npos) << run.err;
  // Every process's log lines say which process they come from.
  for (const char* tag : {" p1 info ", " p2 info ", " p3 info "}) {
    EXPECT_NE(run.err.find(tag), std::string::npos) << tag << "\n" << run.err;
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, PoolscopeLoadProcessesTest,
                         ::testing::Values(TestBackend::kSqlite, TestBackend::kPostgreSQL),
                         [](const auto& p) { return poolscope::testing::backend_name(p.param); });

TEST(PoolscopeLoadProcessesInterruptTest, CtrlCStopsEveryProcessAndExitsWith130) {
  const TempDir dir("poolscope-load-processes-sigint");
  const std::string json = dir / "run.json", out = dir / "out.txt", err = dir / "err.txt";
  Child load(
      {POOLSCOPE_LOAD, "--processes", "2", "--duration", "120", "--threads", "1", "--no-progress",
       "--metrics", "127.0.0.1:0", "--db", "sqlite://" + (dir / "x.db"), "--json", json},
      out, err);
  ASSERT_TRUE(file_shows(err, "p1 info  poolscope-load: serving http://")) << read_file(err);
  ASSERT_TRUE(file_shows(err, "p2 info  poolscope-load: serving http://")) << read_file(err);
  load.signal(SIGINT);  // to the parent only: it passes the stop on
  EXPECT_EQ(load.wait(), 130) << read_file(err);
  const nlohmann::json j = nlohmann::json::parse(read_file(json), nullptr, false);
  ASSERT_TRUE(j.is_object()) << read_file(json);
  EXPECT_EQ(j["interrupted"], true);
  ASSERT_EQ(j["per_process"].size(), 2u);
  for (const nlohmann::json& p : j["per_process"]) {
    EXPECT_EQ(p["interrupted"], true) << p.dump();
    EXPECT_LT(p["duration_s"].get<double>(), 120.0);
    EXPECT_NE(::kill(p["pid"].get<pid_t>(), 0), 0) << "reaped";
  }
}

}  // namespace
