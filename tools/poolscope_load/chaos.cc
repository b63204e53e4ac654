#include "chaos.h"

#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>
#include <spawn.h>
#include <spdlog/logger.h>
#include <sys/wait.h>

#include <cerrno>
#include <optional>

#include "notices.h"

extern char** environ;

namespace poolscope::load {
namespace {

// The client backends of this database but the asking one: the pool's
// connections, naive mode's, anyone else's on this database.
const char* const kTerminate =
    "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    " AND backend_type = 'client backend') t";

// Runs command through /bin/sh; its exit status (-1: it did not run or a
// signal ended it). posix_spawn, not system(): system() ignores SIGINT in
// the caller while it waits, and a restart must not make Ctrl-C wait.
int run_shell(const std::string& command) {
  const char* argv[] = {"/bin/sh", "-c", command.c_str(), nullptr};
  pid_t pid = -1;
  if (::posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ) != 0) {
    return -1;
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

ChaosMonkey::ChaosMonkey(ChaosConfig config) : config_(std::move(config)) {
  thread_ = std::thread([this] { schedule(); });
}

ChaosMonkey::~ChaosMonkey() { stop(); }

void ChaosMonkey::stop() {
  {
    detail::MutexLock lock(mu_);
    stop_.store(true, std::memory_order_relaxed);
    wake_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

bool ChaosMonkey::sleep_until(Clock::time_point until) {
  detail::MutexLock lock(mu_);
  while (!stop_.load(std::memory_order_relaxed) && Clock::now() < until) {
    wake_.wait_until(mu_, until);
  }
  return !stop_.load(std::memory_order_relaxed);
}

void ChaosMonkey::render_succeeded(Clock::time_point started, Clock::time_point finished) noexcept {
  // The common case, between faults, is one relaxed load.
  if (!pending_.load(std::memory_order_relaxed)) return;
  detail::MutexLock lock(mu_);
  if (!awaiting_ || started < fault_start_) return;
  const double seconds = std::chrono::duration<double>(finished - fault_start_).count();
  (fault_ == Fault::kKill ? figures_.kill_recovery_s : figures_.restart_recovery_s)
      .push_back(seconds);
  awaiting_ = false;
  pending_.store(false, std::memory_order_relaxed);
}

void ChaosMonkey::begin_fault(Fault fault) {
  detail::MutexLock lock(mu_);
  if (awaiting_) ++figures_.unrecovered;
  fault_ = fault;
  fault_start_ = Clock::now();
  awaiting_ = true;
  pending_.store(true, std::memory_order_relaxed);
}

void ChaosMonkey::kill_backends() {
  std::uint64_t ended = 0;
  bool ran = false;
  try {
    // A session of its own each round: the last round's may have died with
    // a restart, and a kill must not wait on the pool it is testing.
    soci::session admin(soci::postgresql, config_.url->connect_string());
    const NoticeRoute notices(admin, config_.logger, *config_.url, "chaos connection");
    int n = 0;
    admin << kTerminate, soci::into(n);
    begin_fault(Fault::kKill);
    ended = static_cast<std::uint64_t>(n);
    ran = true;
  } catch (const std::exception& e) {
    config_.logger->warn("poolscope-load chaos: could not terminate backends: {}",
                         config_.url->scrub(e.what()));
  }
  detail::MutexLock lock(mu_);
  if (ran) {
    ++figures_.kills;
    figures_.backends_terminated += ended;
  } else {
    ++figures_.kill_failures;
  }
}

void ChaosMonkey::restart_server() {
  config_.logger->info("poolscope-load chaos: restarting the server ({})", config_.restart_command);
  const auto start = Clock::now();
  const int status = run_shell(config_.restart_command);
  const double took = std::chrono::duration<double>(Clock::now() - start).count();
  // Recovery counts from the server's return: the downtime is the command's.
  begin_fault(Fault::kRestart);
  if (status != 0) {
    config_.logger->warn("poolscope-load chaos: the restart command exited with status {}", status);
  }
  detail::MutexLock lock(mu_);
  ++figures_.restarts;
  figures_.restart_s.push_back(took);
  if (status != 0) ++figures_.restart_failures;
}

void ChaosMonkey::schedule() {
  const bool kills = config_.kill_every.count() > 0;
  const bool restarts = !config_.restart_command.empty() && config_.restart_every.count() > 0;
  const auto period = [](std::chrono::duration<double> d) {
    return std::chrono::duration_cast<Clock::duration>(d);
  };
  auto next_kill = Clock::now() + period(config_.kill_every);
  auto next_restart = Clock::now() + period(config_.restart_every);
  while (kills || restarts) {
    const auto next = !restarts ? next_kill
                      : !kills  ? next_restart
                                : std::min(next_kill, next_restart);
    if (!sleep_until(next)) return;
    if (restarts && next_restart <= Clock::now()) {
      restart_server();
      next_restart = Clock::now() + period(config_.restart_every);
      // Kills resume a period after the server is back, not at once.
      next_kill = Clock::now() + period(config_.kill_every);
    } else {
      kill_backends();
      next_kill = Clock::now() + period(config_.kill_every);
    }
  }
}

bool ChaosMonkey::recovered() const {
  detail::MutexLock lock(mu_);
  return !awaiting_;
}

ChaosFigures ChaosMonkey::figures() const {
  detail::MutexLock lock(mu_);
  ChaosFigures f = figures_;
  f.recovered_at_end = !awaiting_;
  return f;
}

}  // namespace poolscope::load
