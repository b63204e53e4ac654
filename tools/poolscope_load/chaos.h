// The chaos scenario's faults, on a schedule while the widget runs, as
// production does them to a pool: every kill_every, the database's client
// backends are terminated (pg_terminate_backend, through a connection of
// the monkey's own, outside the pool); every restart_every, a command the
// user gives restarts the server (e.g. `pg_ctl restart -m fast`). It
// measures how long the widget takes to recover from each fault: from the
// fault's end (the kill query answered, the restart command done) to the end
// of the first render that began after it and succeeded.
//
// A ChaosMonkey runs its schedule on its own thread from construction to
// stop(); render_succeeded() is called by the render threads.

#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "poolscope/base/mutex.h"
#include "poolscope/pool/url.h"

namespace spdlog {
class logger;
}

namespace poolscope::load {

struct ChaosConfig {
  const ConnectionUrl* url = nullptr;                // the database (PostgreSQL)
  std::chrono::duration<double> kill_every{0.5};     // zero: no kills
  std::chrono::duration<double> restart_every{2.0};  // with a restart command
  std::string restart_command;                       // run by /bin/sh -c; empty: no restarts
  std::shared_ptr<spdlog::logger> logger;
};

// What the faults did and how the widget came back.
struct ChaosFigures {
  std::uint64_t kills = 0;                // rounds of pg_terminate_backend
  std::uint64_t backends_terminated = 0;  // backends those rounds ended
  std::uint64_t kill_failures = 0;        // rounds that could not run (server down)
  std::uint64_t restarts = 0;
  std::uint64_t restart_failures = 0;      // the command exited non-zero
  std::vector<double> restart_s;           // how long each restart command took
  std::vector<double> kill_recovery_s;     // one per kill the widget recovered from
  std::vector<double> restart_recovery_s;  // one per restart
  // Faults followed by the next one before any render came back from them.
  std::uint64_t unrecovered = 0;
  // A render came back from the last fault before figures() was asked.
  bool recovered_at_end = true;
};

// The class is thread-safe. No concurrent call to any API of this type
// causes a data race.
class ChaosMonkey {
 public:
  explicit ChaosMonkey(ChaosConfig config);
  ~ChaosMonkey();
  ChaosMonkey(const ChaosMonkey&) = delete;
  ChaosMonkey& operator=(const ChaosMonkey&) = delete;

  // A render that began at `started` succeeded at `finished`. Cheap unless a
  // fault awaits its recovery.
  void render_succeeded(std::chrono::steady_clock::time_point started,
                        std::chrono::steady_clock::time_point finished) noexcept;

  // Ends the schedule (a restart in progress finishes first). Idempotent.
  void stop();

  // No fault awaits its recovery: a render that began after the last one
  // has succeeded (or there was none).
  bool recovered() const;

  // REQUIRES: stop() was called.
  ChaosFigures figures() const;

 private:
  enum class Fault { kKill, kRestart };
  using Clock = std::chrono::steady_clock;

  void schedule();
  void kill_backends();
  void restart_server();
  // A fault starts now: the one before it is unrecovered if no render came
  // back from it in the meantime.
  void begin_fault(Fault fault);
  // Sleeps until `until` or stop(); false when stopped.
  bool sleep_until(Clock::time_point until);

  const ChaosConfig config_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> pending_{false};  // a fault awaits its recovery (a hint; mu_ decides)
  mutable detail::Mutex mu_;
  detail::CondVar wake_;
  Clock::time_point fault_start_ POOLSCOPE_GUARDED_BY(mu_);
  Fault fault_ POOLSCOPE_GUARDED_BY(mu_) = Fault::kKill;
  bool awaiting_ POOLSCOPE_GUARDED_BY(mu_) = false;
  ChaosFigures figures_ POOLSCOPE_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace poolscope::load
