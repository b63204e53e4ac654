// poolscope-load end to end: run the program, read its JSON, check what a
// user is promised (the counts per mode, churn in pool mode and not in reuse
// mode, the leak report and its return, timeouts and the pool's invariants,
// --compare's ratios and its interruption, clean failures).

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_db.h"
#include "test_util.h"

namespace {

using poolscope::testing::TestBackend;
using poolscope::testing::TestDatabase;

struct LoadRun {
  int exit_code = -1;
  nlohmann::json json;
  std::string err;  // stderr
};

// Runs poolscope-load with --json - and args; its JSON (stdout) and stderr.
LoadRun run_load(const std::string& args) {
  LoadRun run;
  const auto [status, out] = poolscope::testing::run_command(
      std::string(POOLSCOPE_LOAD) + " --no-progress --json - " + args, &run.err);
  run.exit_code = status;
  if (!out.empty()) run.json = nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false);
  return run;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), {}};
}

// The checkouts timed for the p50 / p99 are the outermost ones: one per
// pool checkout (none for a nested reuse), and the figures are ordered.
void expect_latency_describes_checkouts(const nlohmann::json& j) {
  EXPECT_EQ(j["acquire_samples"], j["checkouts"]) << j.dump();
  EXPECT_GT(j["acquire_p50_s"].get<double>(), 0.0);
  EXPECT_GE(j["acquire_p99_s"].get<double>(), j["acquire_p50_s"].get<double>());
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
  EXPECT_NE(run.err.find("Session churn at poolscope_load/widget.cc:read():"), std::string::npos) << run.err;
  EXPECT_EQ(j["sites"][0]["acquires_per_render"].get<double>(), 60.0);
  EXPECT_NE(run.err.find("Database session created (id=1, pool=load, url="), std::string::npos);
  expect_latency_describes_checkouts(j);
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
  // p50 / p99 describe the render's checkout, not the 60 nested reuses.
  expect_latency_describes_checkouts(j);
}

TEST_P(PoolscopeLoadTest, NaiveModeOpensAConnectionPerRead) {
  const LoadRun run = run_load(db() + " --mode naive --threads 2 --duration 1");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const nlohmann::json& j = run.json;
  EXPECT_DOUBLE_EQ(j["checkouts_per_render"].get<double>(), 60.0);
  EXPECT_EQ(j["connections_opened"].get<std::uint64_t>(), 60 * j["renders"].get<std::uint64_t>());
  EXPECT_EQ(j["acquire_samples"], j["connections_opened"])
      << "naive mode times every connection open";
  // The fields the README promises, in naive mode too: untraced, nothing reported.
  EXPECT_EQ(j["traced"], false);
  EXPECT_EQ(j["sites"], nlohmann::json::array());
  EXPECT_EQ(j["churn_warnings"], 0);
  EXPECT_EQ(j["leaks_reported"], 0);
}

TEST_P(PoolscopeLoadTest, LeakScenarioReportsTheHeldLeaseAndItsReturn) {
  const LoadRun run =
      run_load(db() + " --scenario leak --leak-threshold 0.5 --threads 1 --duration 1");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.json["scenario"], "leak");
  EXPECT_EQ(run.json["leaks_reported"], 1) << run.err;
  EXPECT_EQ(run.json["leaks_returned"], 1) << run.err;
  EXPECT_NE(run.err.find("Possible session leak: connection "), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("by poolscope_load/widget.cc:slow_export():"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("(slow-export), past leak_threshold 500.0 ms"), std::string::npos)
      << run.err;
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
  const LoadRun run = run_load(
      db() + " --mode cached --scenario settings-write --write-every 5 --threads 3 --duration 2");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const nlohmann::json& j = run.json;
  EXPECT_EQ(j["scenario"], "settings-write");
  EXPECT_GT(j["writes"].get<int>(), 20);
  EXPECT_EQ(j["stale_reads"], 0);
  EXPECT_GT(j["caches"][0]["evictions_invalidated"].get<int>(), 0) << "saves evict account objects";
}

TEST_P(PoolscopeLoadTest, OversubscribeReportsWaitsAndKeepsThePoolsInvariants) {
  const LoadRun run = run_load(
      db() +
      " --scenario oversubscribe --threads 16 --pool-size 2 --max-overflow 1 --duration 1.5");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const nlohmann::json& j = run.json;
  EXPECT_EQ(j["scenario"], "oversubscribe");
  EXPECT_EQ(j["threads"], 16);
  EXPECT_GT(j["waits"].get<std::uint64_t>(), 0u);
  EXPECT_GT(j["wait_total_s"].get<double>(), 0.0);
  expect_latency_describes_checkouts(j);
  EXPECT_LE(j["max_open_seen"].get<int>(), 3);
  EXPECT_GT(j["max_pending_seen"].get<int>(), 0);
  EXPECT_TRUE(j["invariants_ok"].get<bool>()) << j["invariant_violations"].dump();
  EXPECT_NE(run.err.find("pool invariants        held"), std::string::npos) << run.err;
}

TEST_P(PoolscopeLoadTest, CheckoutTimeoutsAreCountedAndThePoolsInvariantsStillHold) {
  // 32 threads queue for one connection that each render holds for 60
  // queries: far longer in all than a 1 ms checkout timeout.
  const LoadRun run = run_load(db() +
                               " --scenario oversubscribe --mode reuse --threads 32 --pool-size 1"
                               " --max-overflow 0 --checkout-timeout 0.001 --duration 1.5");
  ASSERT_EQ(run.exit_code, 0) << "timeouts are measured, not failures\n" << run.err;
  const nlohmann::json& j = run.json;
  const std::uint64_t timeouts = j["timeouts"].get<std::uint64_t>();
  EXPECT_GT(timeouts, 0u);
  EXPECT_EQ(j["errors"], 0) << j["first_error"];
  EXPECT_GT(j["renders"].get<std::uint64_t>(), 0u);
  // The tracer's site table accounts for every timeout the workers saw.
  std::uint64_t site_timeouts = 0;
  for (const nlohmann::json& site : j["sites"])
    site_timeouts += site["timeouts"].get<std::uint64_t>();
  EXPECT_EQ(site_timeouts, timeouts);
  EXPECT_EQ(j["max_open_seen"], 1);
  EXPECT_TRUE(j["invariants_ok"].get<bool>()) << j["invariant_violations"].dump();
  EXPECT_NE(run.err.find("timeouts               " + std::to_string(timeouts)), std::string::npos)
      << run.err;
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
  EXPECT_EQ(run.json["partial"], false);
  EXPECT_EQ(run.json["modes_not_run"], nlohmann::json::array());
  // Each ratio is the mode's own figure over pool mode's.
  const nlohmann::json& ratios = run.json["ratios"];
  const nlohmann::json& pool = runs[1];
  for (const nlohmann::json& r : runs) {
    const std::string mode = r["mode"];
    EXPECT_DOUBLE_EQ(ratios[mode]["renders_per_s_vs_pool"].get<double>(),
                     r["renders_per_s"].get<double>() / pool["renders_per_s"].get<double>())
        << mode;
    EXPECT_DOUBLE_EQ(
        ratios[mode]["checkouts_per_render_vs_pool"].get<double>(),
        r["checkouts_per_render"].get<double>() / pool["checkouts_per_render"].get<double>())
        << mode;
  }
  EXPECT_NE(run.err.find("poolscope-load --compare: widget scenario"), std::string::npos);
  EXPECT_EQ(run.err.find("PARTIAL"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Backends, PoolscopeLoadTest,
                         ::testing::Values(TestBackend::kSqlite, TestBackend::kPostgreSQL),
                         [](const auto& p) { return poolscope::testing::backend_name(p.param); });

TEST(PoolscopeLoadFailureTest, UnreachableDatabaseExitsNonZeroShowingOnlyTheRedactedUrl) {
  const LoadRun run = run_load("--db postgresql://app:s3cret@127.0.0.1:1/app --duration 1");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("cannot connect to postgresql://app:***@127.0.0.1:1/app"),
            std::string::npos)
      << run.err;
  EXPECT_EQ(run.err.find("s3cret"), std::string::npos) << run.err;
}

// A child process, killed and reaped by the destructor if it still runs.
class Child {
 public:
  // Runs argv[0] with argv, stdout and stderr to the files out and err.
  Child(const std::vector<std::string>& argv, const std::string& out, const std::string& err) {
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const int out_fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const int err_fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out_fd >= 0 && err_fd >= 0) pid_ = ::fork();
    if (pid_ == 0) {  // only async-signal-safe calls until exec
      if (::dup2(out_fd, STDOUT_FILENO) < 0 || ::dup2(err_fd, STDERR_FILENO) < 0) ::_exit(126);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    if (out_fd >= 0) ::close(out_fd);
    if (err_fd >= 0) ::close(err_fd);
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  bool started() const { return pid_ > 0; }
  void signal(int sig) const { ::kill(pid_, sig); }
  // Waits for the child to end; its exit status, or -1 if a signal ended it.
  int wait() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
};

TEST(PoolscopeLoadInterruptTest, CtrlCDuringCompareSkipsTheModesNotRunAndExitsMarkedPartial) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("poolscope-load-interrupt-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string json_path = (dir / "compare.json").string(), out = (dir / "out.txt").string(),
                    err = (dir / "err.txt").string();
  // Two minutes per mode: the interrupt lands long before the first is up.
  // --metrics prints its "serving" line once a mode is running, after the
  // signal handlers are in place.
  Child load({POOLSCOPE_LOAD, "--compare", "--threads", "2", "--duration", "120", "--no-progress",
              "--metrics", "127.0.0.1:0", "--db", "sqlite://" + (dir / "load.db").string(),
              "--json", json_path},
             out, err);
  ASSERT_TRUE(load.started());
  ASSERT_TRUE(poolscope::testing::eventually(
      [&] { return read_file(err).find("serving http://") != std::string::npos; },
      std::chrono::seconds(60)))
      << read_file(err);
  load.signal(SIGINT);
  EXPECT_EQ(load.wait(), 130) << "128 + SIGINT\n" << read_file(err);

  const nlohmann::json j =
      nlohmann::json::parse(read_file(json_path), nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(j.is_object()) << read_file(json_path);
  EXPECT_EQ(j["partial"], true);
  // The modes that ran, then those skipped, make up every mode in order;
  // the last one that ran was cut short.
  const nlohmann::json& runs = j["compare"];
  ASSERT_GE(runs.size(), 1u);
  EXPECT_EQ(runs.back()["interrupted"], true);
  EXPECT_LT(runs.back()["duration_s"].get<double>(), 120.0);
  std::vector<std::string> modes;
  for (const nlohmann::json& r : runs) modes.push_back(r["mode"]);
  for (const nlohmann::json& m : j["modes_not_run"]) modes.push_back(m);
  EXPECT_EQ(modes, (std::vector<std::string>{"naive", "pool", "reuse", "cached"}));
  const std::string table = read_file(out);
  EXPECT_NE(table.find("PARTIAL: interrupted"), std::string::npos) << table;
  EXPECT_NE(read_file(err).find("the comparison is partial"), std::string::npos) << read_file(err);
  std::filesystem::remove_all(dir);
}

TEST(PoolscopeLoadFailureTest, BadOptionsAreUsageErrors) {
  EXPECT_EQ(run_load("--threads 0").exit_code, 2);
  EXPECT_EQ(run_load("--mode sideways").exit_code, 2);
  EXPECT_EQ(run_load("--compare --mode reuse").exit_code, 2);
  const LoadRun leak_naive =
      run_load("--scenario leak --mode naive --db sqlite:///tmp/poolscope-x.db");
  EXPECT_EQ(leak_naive.exit_code, 2);
  EXPECT_NE(leak_naive.err.find("the leak scenario needs a pool"), std::string::npos);
}

}  // namespace
