// poolscope-load as a command: usage errors that say what was expected, the
// version, DATABASE_URL, --json and --metrics checked before the run, one
// exit status per kind of ending, and progress that fits where it goes (a
// line per interval in a log, a bar as wide as the terminal).

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pty.h>
#include <signal.h>
#include <sys/socket.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "load_test_support.h"

namespace {

using poolscope::testing::Child;
using poolscope::testing::LoadRun;
using poolscope::testing::occurrences;
using poolscope::testing::read_file;
using poolscope::testing::run_load;
using poolscope::testing::TempDir;

TEST(PoolscopeLoadCommandLineTest, BadOptionsAreUsageErrorsAndNothingRuns) {
  const TempDir dir("poolscope-load-usage");
  const std::string db = " --db sqlite://" + (dir / "never.db");
  for (const char* args :
       {"--threads 0", "--mode sideways", "--compare --mode reuse", "--scenario leak --mode naive",
        "--compare --processes 2", "--repeats 3", "--processes 0", "--duration", "--bogus"}) {
    const LoadRun run = run_load(std::string(args) + db);
    EXPECT_EQ(run.exit_code, 2) << args << "\n" << run.err;
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "never.db")) << "a usage error seeds nothing";
  EXPECT_NE(
      run_load("--scenario leak --mode naive" + db).err.find("the leak scenario needs a pool"),
      std::string::npos);
}

TEST(PoolscopeLoadCommandLineTest, RangeErrorsSayWhatWasExpectedAndWhatWasGiven) {
  const LoadRun negative = run_load("--duration -1");
  EXPECT_EQ(negative.exit_code, 2);
  EXPECT_NE(negative.err.find("--duration: expected a number of seconds greater than 0, at most "
                              "1000000 (got '-1')"),
            std::string::npos)
      << negative.err;
  // Not a 309-digit bound: no number in the message is longer than 7 digits.
  EXPECT_FALSE(std::regex_search(negative.err, std::regex("[0-9]{8,}"))) << negative.err;
  const LoadRun word = run_load("--duration abc");
  EXPECT_EQ(word.exit_code, 2);
  EXPECT_NE(word.err.find("(got 'abc')"), std::string::npos) << word.err;
  EXPECT_EQ(word.err.find("not in range"), std::string::npos) << word.err;
  const LoadRun threads = run_load("--threads 99999");
  EXPECT_NE(threads.err.find("--threads: expected a whole number from 1 to 4096 (got '99999')"),
            std::string::npos)
      << threads.err;
  EXPECT_NE(run_load("--threads 2.5").err.find("(got '2.5')"), std::string::npos);
}

TEST(PoolscopeLoadCommandLineTest, VersionPrintsTheProjectVersion) {
  const LoadRun run = run_load("--version", /*json=*/false);
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_EQ(run.out, std::string("poolscope-load ") + POOLSCOPE_VERSION + "\n");
}

TEST(PoolscopeLoadCommandLineTest, DatabaseUrlComesFromTheEnvironmentUnlessGiven) {
  const TempDir dir("poolscope-load-env");
  const std::string from_env = "sqlite://" + (dir / "env.db");
  const std::string env = "DATABASE_URL='" + from_env + "'";
  const LoadRun run = run_load("--threads 1 --duration 0.3", true, env);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.json["url"], from_env);
  EXPECT_TRUE(std::filesystem::exists(dir / "env.db"));
  const std::string given = "sqlite://" + (dir / "given.db");
  const LoadRun flag = run_load("--threads 1 --duration 0.3 --db " + given, true, env);
  ASSERT_EQ(flag.exit_code, 0) << flag.err;
  EXPECT_EQ(flag.json["url"], given) << "--db wins over DATABASE_URL";
}

TEST(PoolscopeLoadCommandLineTest, JsonPathIsCheckedBeforeTheRunStarts) {
  const TempDir dir("poolscope-load-json");
  const auto start = std::chrono::steady_clock::now();
  const LoadRun run = run_load("--duration 60 --no-progress --db sqlite://" + (dir / "x.db") +
                                   " --json " + (dir / "missing/out.json"),
                               /*json=*/false);
  EXPECT_EQ(run.exit_code, 2) << run.err;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10)) << "no 60 s run";
  EXPECT_NE(run.err.find("cannot write --json " + (dir / "missing/out.json") +
                         ": No such file or directory"),
            std::string::npos)
      << run.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "x.db")) << "nothing was seeded";
}

// A TCP socket listening on 127.0.0.1 at a port of its own, closed by the destructor.
class Listener {
 public:
  Listener() : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
        ::listen(fd_, 1) == 0 &&
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port_ = ntohs(addr.sin_port);
    }
  }
  ~Listener() { ::close(fd_); }
  int port() const { return port_; }

 private:
  int fd_;
  int port_ = 0;
};

TEST(PoolscopeLoadCommandLineTest, MetricsAddressIsCheckedBeforeTheRunStarts) {
  const TempDir dir("poolscope-load-metrics");
  const std::string db = " --duration 60 --db sqlite://" + (dir / "x.db");
  const Listener taken;
  ASSERT_GT(taken.port(), 0);
  const LoadRun in_use = run_load("--metrics 127.0.0.1:" + std::to_string(taken.port()) + db);
  EXPECT_EQ(in_use.exit_code, 1) << in_use.err;
  EXPECT_NE(in_use.err.find("--metrics: "), std::string::npos) << in_use.err;
  EXPECT_NE(in_use.err.find(std::to_string(taken.port())), std::string::npos) << in_use.err;
  const LoadRun malformed = run_load("--metrics nonsense" + db);
  EXPECT_EQ(malformed.exit_code, 2) << malformed.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "x.db")) << "nothing was seeded";
}

TEST(PoolscopeLoadCommandLineTest, UnreachableDatabaseIsReportedOnceShowingOnlyTheRedactedUrl) {
  const LoadRun run =
      run_load("--db postgresql://app:s3cret@127.0.0.1:1/app --duration 1", /*json=*/false);
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("cannot connect to postgresql://app:***@127.0.0.1:1/app"),
            std::string::npos)
      << run.err;
  EXPECT_EQ(occurrences(run.err, "Connection refused"), 1u) << run.err;
  EXPECT_EQ(occurrences(run.err, "127.0.0.1:1/app"), 1u) << run.err;
  EXPECT_EQ(run.err.find("s3cret"), std::string::npos) << run.err;
}

TEST(PoolscopeLoadCommandLineTest, CtrlCEndsASingleRunWithItsSummaryAndExitStatus130) {
  const TempDir dir("poolscope-load-sigint");
  const std::string json = dir / "run.json", out = dir / "out.txt", err = dir / "err.txt";
  Child load({POOLSCOPE_LOAD, "--duration", "120", "--threads", "2", "--no-progress", "--metrics",
              "127.0.0.1:0", "--db", "sqlite://" + (dir / "x.db"), "--json", json},
             out, err);
  ASSERT_TRUE(poolscope::testing::file_shows(err, "serving http://")) << read_file(err);
  load.signal(SIGINT);
  EXPECT_EQ(load.wait(), 130) << read_file(err);
  const nlohmann::json j = nlohmann::json::parse(read_file(json), nullptr, false);
  EXPECT_EQ(j["interrupted"], true) << read_file(json);
  EXPECT_LT(j["duration_s"].get<double>(), 120.0);
  EXPECT_NE(read_file(out).find("(interrupted)"), std::string::npos) << read_file(out);
}

TEST(PoolscopeLoadCommandLineTest, ProgressLinesComeEveryIntervalWhenStderrIsNoTerminal) {
  const TempDir dir("poolscope-load-progress");
  const LoadRun run = run_load(
      "-P 0.5 --duration 2.2 --threads 1 --mode reuse --db sqlite://" + (dir / "x.db"), false);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const std::regex line(
      "progress: ([0-9.]+) s, ([0-9.]+) renders/s, lat ([0-9.]+) ms stddev ([0-9.]+), 0 failed");
  std::vector<double> at;
  for (auto it = std::sregex_iterator(run.err.begin(), run.err.end(), line);
       it != std::sregex_iterator(); ++it) {
    at.push_back(std::stod((*it)[1]));
    EXPECT_GT(std::stod((*it)[2]), 0.0) << it->str();
    EXPECT_GT(std::stod((*it)[3]), 0.0) << it->str();
  }
  // One line per whole interval of a 2.2 s run, each within a tick (100 ms)
  // plus a loaded machine's margin of its boundary; none for the last 0.2 s.
  ASSERT_EQ(at.size(), 4u) << run.err;
  for (std::size_t k = 0; k < at.size(); ++k) {
    EXPECT_GE(at[k], 0.5 * static_cast<double>(k + 1) - 0.05) << k;
    EXPECT_LE(at[k], 0.5 * static_cast<double>(k + 1) + 0.35) << k;
  }
  EXPECT_EQ(run_load("-P 0.5 --no-progress --duration 1 --db sqlite://" + (dir / "y.db"), false)
                .err.find("progress:"),
            std::string::npos)
      << "--no-progress shows none";
}

// Runs poolscope-load on a pseudo-terminal `columns` wide; what it wrote.
std::string run_on_terminal(int columns, const std::string& db) {
  winsize size{};
  size.ws_col = static_cast<unsigned short>(columns);
  size.ws_row = 24;
  int master = -1;
  const pid_t pid = ::forkpty(&master, nullptr, nullptr, &size);
  if (pid == 0) {
    ::execl(POOLSCOPE_LOAD, POOLSCOPE_LOAD, "--duration", "1.5", "--threads", "1", "--db",
            db.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  std::string output;
  char buffer[4096];
  for (ssize_t n; pid > 0 && (n = ::read(master, buffer, sizeof buffer)) > 0;) {
    output.append(buffer, static_cast<std::size_t>(n));
  }
  if (master >= 0) ::close(master);
  if (pid > 0) ::waitpid(pid, nullptr, 0);
  return output;
}

// The progress bar's frames in a terminal's output: the pieces between
// carriage returns and newlines, erase sequences removed, that start as a
// bar or its figures do.
std::vector<std::string> bar_frames(const std::string& output) {
  const std::string cleaned = std::regex_replace(output, std::regex("\x1b\\[2K"), "");
  std::vector<std::string> frames;
  const std::regex frame("^(\\[[#.]+\\])? [0-9]+\\.[0-9]/[0-9]+\\.[0-9] s.*");
  std::string piece;
  for (char c : cleaned + "\n") {
    if (c == '\r' || c == '\n') {
      if (std::regex_match(piece, frame)) frames.push_back(piece);
      piece.clear();
    } else {
      piece += c;
    }
  }
  return frames;
}

TEST(PoolscopeLoadCommandLineTest, ProgressBarFitsTheTerminalWidth) {
  const TempDir dir("poolscope-load-bar");
  for (int columns : {40, 120}) {
    const std::vector<std::string> frames =
        bar_frames(run_on_terminal(columns, "sqlite://" + (dir / "x.db")));
    ASSERT_FALSE(frames.empty()) << columns << " columns";
    for (const std::string& f : frames) {
      EXPECT_LT(static_cast<int>(f.size()), columns) << "'" << f << "'";
      // Wide enough for a bar: it is drawn; too narrow: the figures alone.
      EXPECT_EQ(f.front() == '[', columns == 120) << "'" << f << "'";
    }
  }
}

TEST(PoolscopeLoadCommandLineTest, HelpSaysWhereAPasswordCanComeFrom) {
  const LoadRun run = run_load("--help", /*json=*/false);
  EXPECT_EQ(run.exit_code, 0);
  for (const char* text : {"DATABASE_URL", "PGPASSWORD", "PGPASSFILE", "/proc/<pid>/cmdline"}) {
    EXPECT_NE(run.out.find(text), std::string::npos) << text << "\n" << run.out;
  }
}

}  // namespace
