// poolscope-load --compare: every mode in interleaved rounds, each mode's
// spread, ratios of medians against pool mode, and a comparison cut short
// by Ctrl-C marked partial with exit status 130.

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "load_test_support.h"
#include "test_db.h"

namespace {

using poolscope::testing::Child;
using poolscope::testing::LoadRun;
using poolscope::testing::read_file;
using poolscope::testing::run_load;
using poolscope::testing::TempDir;
using poolscope::testing::TestBackend;
using poolscope::testing::TestDatabase;

class PoolscopeLoadCompareTest : public ::testing::TestWithParam<TestBackend> {
 protected:
  void SetUp() override { db_ = std::make_unique<TestDatabase>(GetParam()); }
  std::string db() const { return "--db '" + db_->url() + "'"; }
  std::unique_ptr<TestDatabase> db_;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

TEST_P(PoolscopeLoadCompareTest, InterleavesTheModesInRoundsAndReportsTheirSpread) {
  const LoadRun run = run_load(db() + " --compare --repeats 3 --threads 2 --duration 0.4");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const nlohmann::json& j = run.json;
  EXPECT_EQ(j["repeats"], 3);
  EXPECT_EQ(j["partial"], false);
  EXPECT_EQ(j["modes_not_run"], nlohmann::json::array());
  // Every round runs every mode once, and the order is the run order.
  const nlohmann::json& runs = j["runs"];
  ASSERT_EQ(runs.size(), 12u);
  for (int round = 1; round <= 3; ++round) {
    std::set<std::string> modes;
    for (int i = 0; i < 4; ++i) {
      const nlohmann::json& r = runs[static_cast<std::size_t>((round - 1) * 4 + i)];
      EXPECT_EQ(r["round"], round);
      modes.insert(r["mode"].get<std::string>());
    }
    EXPECT_EQ(modes, (std::set<std::string>{"naive", "pool", "reuse", "cached"})) << round;
  }
  // Per mode: the spread of its own runs, and its median run's figures.
  const nlohmann::json& per_mode = j["compare"];
  ASSERT_EQ(per_mode.size(), 4u);
  const char* modes[] = {"naive", "pool", "reuse", "cached"};
  std::map<std::string, double> medians;
  for (int i = 0; i < 4; ++i) {
    const nlohmann::json& m = per_mode[static_cast<std::size_t>(i)];
    EXPECT_EQ(m["mode"], modes[i]);
    EXPECT_EQ(m["runs"], 3);
    std::vector<double> rates;
    for (const nlohmann::json& r : runs) {
      if (r["mode"] == modes[i]) rates.push_back(r["renders_per_s"].get<double>());
    }
    EXPECT_DOUBLE_EQ(m["renders_per_s_min"].get<double>(),
                     *std::min_element(rates.begin(), rates.end()));
    EXPECT_DOUBLE_EQ(m["renders_per_s_max"].get<double>(),
                     *std::max_element(rates.begin(), rates.end()));
    EXPECT_DOUBLE_EQ(m["renders_per_s_median"].get<double>(), median(rates));
    medians[modes[i]] = median(rates);
  }
  EXPECT_DOUBLE_EQ(per_mode[0]["checkouts_per_render"].get<double>(), 60.0);
  EXPECT_DOUBLE_EQ(per_mode[1]["checkouts_per_render"].get<double>(), 60.0);
  EXPECT_DOUBLE_EQ(per_mode[2]["checkouts_per_render"].get<double>(), 1.0);
  EXPECT_LE(per_mode[3]["checkouts_per_render"].get<double>(), 0.01);
  // Each ratio is the mode's median over pool mode's median.
  for (const auto& [mode, value] : medians) {
    EXPECT_DOUBLE_EQ(j["ratios"][mode]["renders_per_s_vs_pool"].get<double>(),
                     value / medians["pool"])
        << mode;
  }
  EXPECT_DOUBLE_EQ(j["ratios"]["reuse"]["checkouts_per_render_vs_pool"].get<double>(), 1.0 / 60);
  EXPECT_NE(run.err.find("poolscope-load --compare: widget scenario"), std::string::npos);
  EXPECT_NE(run.err.find("renders/s min / median / max"), std::string::npos) << run.err;
  EXPECT_EQ(run.err.find("PARTIAL"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Backends, PoolscopeLoadCompareTest,
                         ::testing::Values(TestBackend::kSqlite, TestBackend::kPostgreSQL),
                         [](const auto& p) { return poolscope::testing::backend_name(p.param); });

TEST(PoolscopeLoadInterruptTest, CtrlCDuringCompareSkipsTheRunsNotStartedAndExitsMarkedPartial) {
  const TempDir dir("poolscope-load-interrupt");
  const std::string json_path = dir / "compare.json", out = dir / "out.txt", err = dir / "err.txt";
  // Two minutes per run: the interrupt lands long before the first is up.
  // --metrics prints its "serving" line once a run is going, after the
  // signal handlers are in place.
  Child load(
      {POOLSCOPE_LOAD, "--compare", "--threads", "2", "--duration", "120", "--no-progress",
       "--metrics", "127.0.0.1:0", "--db", "sqlite://" + (dir / "load.db"), "--json", json_path},
      out, err);
  ASSERT_TRUE(load.started());
  ASSERT_TRUE(poolscope::testing::file_shows(err, "serving http://")) << read_file(err);
  load.signal(SIGINT);
  EXPECT_EQ(load.wait(), 130) << "128 + SIGINT\n" << read_file(err);

  const nlohmann::json j = nlohmann::json::parse(read_file(json_path), nullptr, false);
  ASSERT_TRUE(j.is_object()) << read_file(json_path);
  EXPECT_EQ(j["partial"], true);
  // One run started, and it was cut short; the modes that ran and those
  // that did not make up every mode.
  const nlohmann::json& runs = j["runs"];
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0]["interrupted"], true);
  EXPECT_LT(runs[0]["duration_s"].get<double>(), 120.0);
  std::set<std::string> modes;
  for (const nlohmann::json& r : j["compare"]) modes.insert(r["mode"].get<std::string>());
  for (const nlohmann::json& m : j["modes_not_run"]) modes.insert(m.get<std::string>());
  EXPECT_EQ(modes, (std::set<std::string>{"naive", "pool", "reuse", "cached"}));
  EXPECT_EQ(j["modes_not_run"].size(), 3u);
  const std::string table = read_file(out);
  EXPECT_NE(table.find("PARTIAL: interrupted"), std::string::npos) << table;
  EXPECT_NE(read_file(err).find("the comparison is partial"), std::string::npos) << read_file(err);
}

}  // namespace
