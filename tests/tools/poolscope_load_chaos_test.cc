// poolscope-load --scenario chaos: backends killed (pg_terminate_backend) and
// the server restarted while the widget runs; the run reports the faults, how
// the widget came back from each, and the pool's invariants, and fails only
// when the widget does not come back, an invariant breaks or the restart
// command fails. The restarts run in their own suite, on a server of their
// own (tests/fixtures/pg_server.sh restart), so no other suite loses its
// connections.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "load_test_support.h"
#include "test_db.h"

namespace {

using poolscope::testing::LoadRun;
using poolscope::testing::run_load;
using poolscope::testing::TestBackend;
using poolscope::testing::TestDatabase;

void expect_recovered_with_invariants(const nlohmann::json& j, const std::string& err) {
  ASSERT_TRUE(j.contains("chaos")) << err;
  EXPECT_EQ(j["scenario"], "chaos");
  EXPECT_EQ(j["chaos"]["recovered_at_end"], true) << j["chaos"].dump();
  EXPECT_TRUE(j["invariants_ok"].get<bool>()) << j["invariant_violations"].dump();
  EXPECT_GT(j["renders"].get<std::uint64_t>(), 0u);
}

#ifndef POOLSCOPE_CHAOS_PG_DIR

TEST(PoolscopeLoadChaosTest, KilledBackendsAreCountedAndTheWidgetComesBack) {
  const TestDatabase db(TestBackend::kPostgreSQL);
  const LoadRun run = run_load("--db '" + db.url() +
                               "' --scenario chaos --mode reuse --threads 2 --duration 3"
                               " --chaos-kill-every 0.3");
  EXPECT_EQ(run.exit_code, 0) << "failed renders are what chaos measures\n" << run.err;
  const nlohmann::json& j = run.json;
  expect_recovered_with_invariants(j, run.err);
  const nlohmann::json& c = j["chaos"];
  // A round every 0.3 s of a 3 s run: 9 or 10, fewer on a loaded machine,
  // never more.
  EXPECT_GE(c["kills"].get<int>(), 5) << c.dump();
  EXPECT_LE(c["kills"].get<int>(), 10) << c.dump();
  EXPECT_GT(c["backends_terminated"].get<int>(), 0) << c.dump();
  EXPECT_GT(c["recovery_after_kill"]["count"].get<int>(), 0) << c.dump();
  EXPECT_LE(c["recovery_after_kill"]["median_s"].get<double>(),
            c["recovery_after_kill"]["max_s"].get<double>());
  EXPECT_EQ(c["restarts"], 0) << "no restart command, no restarts";
  EXPECT_NE(run.err.find("backends killed        "), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("recovery after a kill  median "), std::string::npos) << run.err;
}

TEST(PoolscopeLoadChaosTest, ARestartCommandThatFailsFailsTheRun) {
  const TestDatabase db(TestBackend::kPostgreSQL);
  const LoadRun run = run_load("--db '" + db.url() +
                               "' --scenario chaos --mode pool --threads 1 --duration 1.2"
                               " --chaos-kill-every 0 --chaos-restart-every 0.5"
                               " --chaos-restart-command 'exit 3'");
  EXPECT_EQ(run.exit_code, 1) << run.err;
  const nlohmann::json& c = run.json["chaos"];
  EXPECT_GE(c["restarts"].get<int>(), 2) << c.dump();
  EXPECT_EQ(c["restart_failures"], c["restarts"]);
  EXPECT_EQ(c["kills"], 0);
  EXPECT_NE(run.err.find("the restart command exited with status 3"), std::string::npos) << run.err;
}

TEST(PoolscopeLoadChaosTest, NeedsPostgreSQLAndItsOwnFlagsNeedIt) {
  EXPECT_EQ(run_load("--scenario chaos --db sqlite:///tmp/poolscope-chaos-never.db").exit_code, 2);
  EXPECT_EQ(run_load("--chaos-kill-every 1 --db sqlite:///tmp/poolscope-chaos-never.db").exit_code,
            2);
  EXPECT_EQ(run_load("--scenario chaos --processes 2 --db postgresql://u@127.0.0.1:1/x").exit_code,
            2);
}

#else  // the suite with a server of its own, which it restarts

TEST(PoolscopeLoadChaosRestartTest, ServerRestartsAndKillsDuringTheWidgetAreRecoveredFrom) {
  const TestDatabase db(TestBackend::kPostgreSQL);
  const std::string restart =
      std::string("bash ") + POOLSCOPE_PG_SERVER_SH + " restart " + POOLSCOPE_CHAOS_PG_DIR;
  const LoadRun run = run_load("--db '" + db.url() +
                               "' --scenario chaos --mode pool --threads 2 --duration 5"
                               " --chaos-kill-every 0.5 --chaos-restart-every 1.5"
                               " --chaos-restart-command '" +
                               restart + "'");
  EXPECT_EQ(run.exit_code, 0) << run.err;
  const nlohmann::json& j = run.json;
  expect_recovered_with_invariants(j, run.err);
  const nlohmann::json& c = j["chaos"];
  EXPECT_GE(c["restarts"].get<int>(), 2) << c.dump();
  EXPECT_EQ(c["restart_failures"], 0) << c.dump();
  EXPECT_GT(c["restart_duration"]["max_s"].get<double>(), 0.0);
  EXPECT_GE(c["recovery_after_restart"]["count"].get<int>(), 1) << c.dump();
  EXPECT_GT(c["kills"].get<int>(), 0) << c.dump();
  // And the server is back for whoever comes next.
  const auto sql = db.open_session();
  int one = 0;
  *sql << "SELECT 1", soci::into(one);
  EXPECT_EQ(one, 1);
}

#endif

}  // namespace
