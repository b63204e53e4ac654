// poolscope-load --redis on a real Redis (the CTest fixture 'redis', or one
// of the test's own that it kills) and the throwaway PostgreSQL: one
// database load per cold key for all processes, saves seen by every
// process within milliseconds, Redis killed mid-run without an error, bad
// URLs refused, and the Redis password in no output.

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "load_test_support.h"
#include "test_db.h"

namespace {

using poolscope::testing::Child;
using poolscope::testing::file_shows;
using poolscope::testing::LoadRun;
using poolscope::testing::read_file;
using poolscope::testing::run_command;
using poolscope::testing::run_load;
using poolscope::testing::TempDir;
using poolscope::testing::TestBackend;
using poolscope::testing::TestDatabase;

struct Redis {
  std::string host, port, password, dir;
  std::string url(int db = 0) const {
    return "redis://:" + password + "@" + host + ":" + port + "/" + std::to_string(db);
  }
};

Redis read_redis(const std::map<std::string, std::string>& env) {
  return {env.at("host"), env.at("port"), env.at("password"), env.at("dir")};
}

// The fixture's Redis; points $POOLSCOPE_PG_ENV at the PostgreSQL it requires.
const Redis& fixture_redis() {
  static const Redis redis = [] {
    auto env = poolscope::testing::read_env_file("POOLSCOPE_REDIS_ENV", "redis");
    if (!env["pg_env"].empty()) ::setenv("POOLSCOPE_PG_ENV", env["pg_env"].c_str(), 0);
    return read_redis(env);
  }();
  return redis;
}

// A redis-server of the test's own (tests/fixtures/redis.sh), to kill.
class OwnRedis {
 public:
  explicit OwnRedis(const TempDir& dir) : dir_(dir / "redis") {
    const auto [status, out] = run_command("bash '" POOLSCOPE_REDIS_SCRIPT "' start '" + dir_ +
                                           "' '" POOLSCOPE_FREE_PORT "'");
    if (status != 0) throw std::runtime_error("could not start a Redis of our own: " + out);
    std::map<std::string, std::string> env;
    std::istringstream in(read_file(dir_ + "/redis.env"));
    for (std::string line; std::getline(in, line);) {
      if (const auto eq = line.find('='); eq != std::string::npos)
        env[line.substr(0, eq)] = line.substr(eq + 1);
    }
    redis_ = read_redis(env);
  }
  ~OwnRedis() { run_command("bash '" POOLSCOPE_REDIS_SCRIPT "' stop '" + dir_ + "'"); }
  const Redis& redis() const { return redis_; }
  void kill() const { signal(SIGKILL); }
  void signal(int sig) const {  // SIGKILL, SIGSTOP, SIGCONT
    const pid_t pid = std::stoi(read_file(dir_ + "/redis.pid"));
    ASSERT_EQ(::kill(pid, sig), 0);
  }

 private:
  std::string dir_;
  Redis redis_;
};

class PoolscopeLoadRedisTest : public ::testing::Test {
 protected:
  PoolscopeLoadRedisTest() : redis_(fixture_redis()), db_(TestBackend::kPostgreSQL) {}

  std::string db() const { return "--db '" + db_.url() + "'"; }
  // The run's output holds neither password.
  void expect_no_secrets(const LoadRun& run) const {
    for (const std::string* text : {&run.out, &run.err}) {
      EXPECT_EQ(text->find(redis_.password), std::string::npos) << *text;
    }
  }

  const Redis& redis_;
  TestDatabase db_;
};

TEST_F(PoolscopeLoadRedisTest, ProcessesLoadEachColdKeyOnceWithRedisAndOncePerProcessWithout) {
  const std::string common = db() + " --processes 4 --mode cached --threads 2 --duration 2";
  const LoadRun without = run_load(common);
  ASSERT_EQ(without.exit_code, 0) << without.err;
  const LoadRun with = run_load(common + " --redis '" + redis_.url() + "'");
  ASSERT_EQ(with.exit_code, 0) << with.err;
  expect_no_secrets(with);

  const double per_key_without = without.json["database_loads_per_key"].get<double>();
  const double per_key_with = with.json["database_loads_per_key"].get<double>();
  std::printf(
      "[ figures  ] loads per distinct key: %.2f with Redis, %.2f without; "
      "connections opened %llu / %llu; renders/s %.0f / %.0f\n",
      per_key_with, per_key_without,
      static_cast<unsigned long long>(with.json["connections_opened"].get<std::uint64_t>()),
      static_cast<unsigned long long>(without.json["connections_opened"].get<std::uint64_t>()),
      with.json["renders_per_s"].get<double>(), without.json["renders_per_s"].get<double>());
  EXPECT_GE(per_key_without, 2.5) << "each process loads every key itself";
  EXPECT_LE(per_key_with, 1.5) << "one process loads a cold key for all; the tier did "
                               << with.json["redis"].dump();
  EXPECT_EQ(with.json["distinct_keys"], 5);
  EXPECT_GT(with.json["redis_hits"].get<std::uint64_t>(), 0u) << "the others found it in Redis";
  EXPECT_EQ(without.json["redis_hits"], 0);
  EXPECT_EQ(with.json["errors"], 0);
  ASSERT_EQ(with.json["per_process"].size(), 4u);
  std::uint64_t hits = 0;
  for (const nlohmann::json& p : with.json["per_process"]) {
    ASSERT_TRUE(p.contains("redis")) << p.dump();
    EXPECT_EQ(p["redis"]["errors"], 0) << p.dump();
    EXPECT_NE(p["redis"]["url"].get<std::string>().find(":***@"), std::string::npos);
    hits += p["redis_hits"].get<std::uint64_t>();
  }
  EXPECT_EQ(with.json["redis_hits"], hits);
  EXPECT_NE(with.err.find("redis hits"), std::string::npos) << with.err;
}

TEST_F(PoolscopeLoadRedisTest, SettingsWriteAcrossProcessesSeesEverySaveWithinMilliseconds) {
  for (const int processes : {2, 4}) {
    const LoadRun run =
        run_load(db() + " --processes " + std::to_string(processes) +
                 " --scenario settings-write --mode cached --threads 2 --duration 3 --redis '" +
                 redis_.url() + "'");
    expect_no_secrets(run);
    const nlohmann::json& j = run.json;
    ASSERT_TRUE(j.contains("staleness_p99_ms")) << run.out;
    // No read in any process returns a value older than a save that had
    // returned --stale-window (1 s) before the read began, Redis slow
    // (timeouts under the suite's load) or not.
    const nlohmann::json& tier = j["redis"];
    const bool redis_answered = tier["timeouts"].get<std::uint64_t>() == 0 &&
                                tier["breaker_opened"].get<std::uint64_t>() == 0;
    EXPECT_EQ(j["stale_reads"], 0) << run.err;
    EXPECT_EQ(run.exit_code, 0) << run.err;
    if (!redis_answered) std::printf("[ note     ] Redis timed out: %s\n", tier.dump().c_str());
    std::printf(
        "[ figures  ] %d processes: staleness p50 %.1f ms, p99 %.1f ms, max %.1f ms over "
        "%llu saves; %llu stale, %llu late reads\n",
        processes, j["staleness_p50_ms"].get<double>(), j["staleness_p99_ms"].get<double>(),
        j["staleness_max_ms"].get<double>(),
        static_cast<unsigned long long>(j["staleness_saves"].get<std::uint64_t>()),
        static_cast<unsigned long long>(j["stale_reads"].get<std::uint64_t>()),
        static_cast<unsigned long long>(j["late_reads"].get<std::uint64_t>()));
    EXPECT_GT(j["writes"].get<std::uint64_t>(), 10u);
    EXPECT_GT(j["staleness_saves"].get<std::uint64_t>(), 10u) << "saves seen by every process";
    // The goal is 50 ms (about 30 ms measured on a quiet machine; 245 ms
    // seen with the other suites running beside it on 2 cores). What is
    // promised is --stale-window (1 s): p99 must stay well inside it.
    if (redis_answered) {
      EXPECT_LT(j["staleness_p99_ms"].get<double>(), 500.0) << tier.dump() << "\n" << run.err;
    }
    EXPECT_EQ(j["errors"], 0);
    EXPECT_EQ(j["failed"], 0) << "stale reads fail the run, never a render";
    EXPECT_NE(run.err.find("staleness window"), std::string::npos) << run.err;
  }
}

TEST_F(PoolscopeLoadRedisTest, RedisKilledMidRunCostsNoErrorAndRendersGoOn) {
  const TempDir dir("poolscope-load-redis-kill");
  const OwnRedis own(dir);
  const std::string out = dir / "out.json", err = dir / "err.txt";
  Child load({POOLSCOPE_LOAD, "--db", db_.url(), "--scenario", "settings-write", "--mode", "cached",
              "--threads", "2", "--duration", "6", "-P", "0.5", "--redis", own.redis().url(),
              "--json", out},
             dir / "stdout.txt", err);
  ASSERT_TRUE(load.started());
  ASSERT_TRUE(file_shows(err, "progress: 2.", std::chrono::seconds(30))) << read_file(err);
  own.kill();
  const int status = load.wait();
  const std::string text = read_file(err);
  EXPECT_EQ(text.find(own.redis().password), std::string::npos);
  const nlohmann::json j = nlohmann::json::parse(read_file(out), nullptr, false);
  ASSERT_TRUE(j.is_object()) << read_file(out);
  EXPECT_EQ(status, 0) << text;
  EXPECT_EQ(j["stale_reads"], 0) << text;
  EXPECT_EQ(j["errors"], 0);
  EXPECT_EQ(j["failed"], 0);
  EXPECT_GT(j["redis"]["errors"].get<std::uint64_t>() + j["redis"]["timeouts"].get<std::uint64_t>(),
            0u)
      << "Redis was gone";
  // Renders per second from the progress lines, before and after the kill.
  static const std::regex line(R"(progress: ([0-9.]+) s, ([0-9.]+) renders/s)");
  double before = 0, after = 0;
  int n_before = 0, n_after = 0;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), line); it != std::sregex_iterator();
       ++it) {
    const double at = std::stod((*it)[1]), rate = std::stod((*it)[2]);
    if (at <= 2.0 && at > 0.5) {
      before += rate;
      ++n_before;
    }
    if (at >= 3.5) {
      after += rate;
      ++n_after;
    }
  }
  ASSERT_GT(n_before, 0) << text;
  ASSERT_GT(n_after, 0) << text;
  before /= n_before;
  after /= n_after;
  std::printf("[ figures  ] renders/s with Redis killed: %.0f vs %.0f before (%.2f), %llu errors\n",
              after, before, before > 0 ? after / before : 0.0,
              static_cast<unsigned long long>(j["errors"].get<std::uint64_t>()));
  EXPECT_GT(after, 0.2 * before) << "renders go on without Redis";
}

// Two processes saving and reading while Redis hangs (SIGSTOP) for 1.5 s
// and then goes on: the saves made meanwhile cannot be broadcast, yet no
// process serves an old value past --stale-window, and nothing fails.
TEST_F(PoolscopeLoadRedisTest, RedisHungMidRunLeavesNoProcessServingAnOldSave) {
  const TempDir dir("poolscope-load-redis-hung");
  const OwnRedis own(dir);
  const std::string out = dir / "out.json", err = dir / "err.txt";
  Child load({POOLSCOPE_LOAD, "--db", db_.url(), "--processes", "2", "--scenario", "settings-write",
              "--mode", "cached", "--threads", "2", "--duration", "5", "-P", "0.5", "--redis",
              own.redis().url(), "--json", out},
             dir / "stdout.txt", err);
  ASSERT_TRUE(load.started());
  ASSERT_TRUE(file_shows(err, "progress: 1.", std::chrono::seconds(30))) << read_file(err);
  own.signal(SIGSTOP);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  own.signal(SIGCONT);
  const int status = load.wait();
  const std::string text = read_file(err);
  EXPECT_EQ(text.find(own.redis().password), std::string::npos);
  const nlohmann::json j = nlohmann::json::parse(read_file(out), nullptr, false);
  ASSERT_TRUE(j.is_object()) << read_file(out);
  EXPECT_EQ(status, 0) << text;
  EXPECT_EQ(j["stale_reads"], 0) << text;
  EXPECT_EQ(j["errors"], 0);
  EXPECT_EQ(j["failed"], 0);
  EXPECT_GT(j["writes"].get<std::uint64_t>(), 10u);
  EXPECT_GT(j["redis"]["timeouts"].get<std::uint64_t>(), 0u) << "Redis hung: " << text;
  // Every save was seen by every process well inside the window: none
  // stalled after the outage on a load lock it left behind.
  EXPECT_LT(j["staleness_p99_ms"].get<double>(), 1000.0) << text;
  std::printf(
      "[ figures  ] Redis hung 1.5 s under 2 processes: %llu writes, %llu stale, %llu late "
      "reads; staleness p99 %.1f ms, max %.1f ms\n",
      static_cast<unsigned long long>(j["writes"].get<std::uint64_t>()),
      static_cast<unsigned long long>(j["stale_reads"].get<std::uint64_t>()),
      static_cast<unsigned long long>(j["late_reads"].get<std::uint64_t>()),
      j.value("staleness_p99_ms", -1.0), j.value("staleness_max_ms", -1.0));
}

TEST_F(PoolscopeLoadRedisTest, MetricsAndStatsShowTheTierWithoutItsPassword) {
  const LoadRun run = run_load(db() +
                               " --mode cached --threads 1 --duration 1 --print-stats "
                               "--redis '" +
                               redis_.url() + "'");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  expect_no_secrets(run);
  EXPECT_NE(run.err.find("\"redis_tiers\""), std::string::npos) << run.err;
  EXPECT_NE(run.err.find(":***@"), std::string::npos) << run.err;
}

TEST(PoolscopeLoadRedisOptionsTest, ABadRedisUrlIsAUsageErrorNamingTheBadPart) {
  const LoadRun run = run_load(
      "--db sqlite:///nonexistent/x.db --mode cached --redis 'redis://:hunter2-secret@host:x/0'",
      false);
  EXPECT_EQ(run.exit_code, 2) << run.err;
  EXPECT_NE(run.err.find("--redis: "), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("port"), std::string::npos) << run.err;
  EXPECT_EQ(run.err.find("hunter2-secret"), std::string::npos) << run.err;
  EXPECT_EQ(run.out.find("hunter2-secret"), std::string::npos) << run.out;
  const LoadRun tls = run_load("--mode cached --redis rediss://host:6379", false);
  EXPECT_EQ(tls.exit_code, 2) << tls.err;
  EXPECT_NE(tls.err.find("--redis: "), std::string::npos) << tls.err;
}

TEST(PoolscopeLoadRedisOptionsTest, RedisWithoutACacheIsAUsageError) {
  const LoadRun run = run_load("--mode pool --redis redis://127.0.0.1:1/0", false);
  EXPECT_EQ(run.exit_code, 2) << run.err;
  EXPECT_NE(run.err.find("--redis puts Redis under the caches: use it with --mode cached"),
            std::string::npos)
      << run.err;
  const LoadRun prefix = run_load("--mode cached --redis-prefix x", false);
  EXPECT_EQ(prefix.exit_code, 2) << prefix.err;
  EXPECT_NE(prefix.err.find("--redis-prefix needs --redis"), std::string::npos) << prefix.err;
}

}  // namespace
