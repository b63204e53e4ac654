// Faults for the fault-injection suite: a PostgreSQL server of the suite's
// own that a test can stop (SIGSTOP: it hangs, it does not refuse), resume
// and restart; a TCP listener that accepts and never answers; a port where
// nothing listens; backends killed from outside, as a DBA or a failover
// would.

#pragma once

#include <chrono>
#include <string>

namespace poolscope::testing {

// The server of $POOLSCOPE_PG_ENV, controlled through its fixture script.
class PgFaults {
 public:
  PgFaults();

  void pause() const;   // SIGSTOP the postmaster and every backend
  void resume() const;  // SIGCONT
  // pg_ctl restart -m mode ("fast" or "immediate"); returns how long it took.
  std::chrono::milliseconds restart(const std::string& mode) const;

  // pg_terminate_backend() of every backend whose application_name starts
  // with prefix; returns how many. Waits until they are gone.
  int terminate_backends(const std::string& application_name_prefix) const;

 private:
  void run(const std::string& verb) const;
  std::string control_;
  std::string dir_;
};

// Resumes a paused server when it goes, whatever the test did.
class PausedServer {
 public:
  explicit PausedServer(const PgFaults& faults) : faults_(faults) { faults_.pause(); }
  ~PausedServer() { faults_.resume(); }
  PausedServer(const PausedServer&) = delete;
  PausedServer& operator=(const PausedServer&) = delete;

 private:
  const PgFaults& faults_;
};

// Listens on 127.0.0.1 and never accepts: the kernel completes the TCP
// handshake, then nothing ever answers.
class BlackHoleListener {
 public:
  BlackHoleListener();
  ~BlackHoleListener();
  BlackHoleListener(const BlackHoleListener&) = delete;
  BlackHoleListener& operator=(const BlackHoleListener&) = delete;
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// A loopback port nothing listens on (connects are refused at once).
int refused_port();

// Milliseconds since start, for "returns within deadline + margin".
inline std::chrono::milliseconds elapsed_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               start);
}

}  // namespace poolscope::testing
