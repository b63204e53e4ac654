// --processes N: N worker processes against one database, as a service
// runs N processes (or machines), each with its own pool and caches, and one
// combined summary and JSON.
//
// The parent forks the workers before it starts any thread (it checks), so
// each child is a plain copy of a single-threaded program: it runs the
// scenario with run(), publishes its totals about every 100 ms into memory
// shared with the parent (lock-free atomics, one slot per child, written by
// that child only), and at the end writes its result as JSON into a pipe.
// The parent shows the combined progress, forwards a stop request, reads
// the pipes, reaps the children and adds their figures up.

#include "processes.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <thread>

#include "progress.h"
#include "report.h"

namespace poolscope::load {
namespace {

using Clock = std::chrono::steady_clock;

// One child's totals: it writes, the parent reads.
struct SharedTotals {
  std::atomic<std::uint64_t> renders{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<double> latency_sum_ms{0};
  std::atomic<double> latency_sumsq_ms{0};
};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free &&
                  std::atomic<double>::is_always_lock_free,
              "shared between processes, the atomics must not hide a lock");

// The slots, in an anonymous shared mapping that the children inherit.
class SharedSlots {
 public:
  explicit SharedSlots(std::size_t n) : n_(n) {
    void* memory =
        ::mmap(nullptr, bytes(), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED)
      throw std::runtime_error(std::string("mmap: ") + std::strerror(errno));
    slots_ = static_cast<SharedTotals*>(memory);
    for (std::size_t i = 0; i < n_; ++i) new (&slots_[i]) SharedTotals();
  }
  ~SharedSlots() { ::munmap(slots_, bytes()); }
  SharedSlots(const SharedSlots&) = delete;
  SharedSlots& operator=(const SharedSlots&) = delete;

  SharedTotals& operator[](std::size_t i) { return slots_[i]; }

  RenderTotals sum() const {
    RenderTotals t;
    for (std::size_t i = 0; i < n_; ++i) {
      t.renders += slots_[i].renders.load(std::memory_order_relaxed);
      t.failed += slots_[i].failed.load(std::memory_order_relaxed);
      t.latency_sum_ms += slots_[i].latency_sum_ms.load(std::memory_order_relaxed);
      t.latency_sumsq_ms += slots_[i].latency_sumsq_ms.load(std::memory_order_relaxed);
    }
    return t;
  }

 private:
  std::size_t bytes() const { return n_ * sizeof(SharedTotals); }
  std::size_t n_;
  SharedTotals* slots_ = nullptr;
};

// The settings-write scenario's CommitLog, in an anonymous shared mapping
// that the children inherit: every process's saves, seen by all.
class SharedCommitLog {
 public:
  SharedCommitLog() {
    void* memory = ::mmap(nullptr, sizeof(CommitLog), PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED)
      throw std::runtime_error(std::string("mmap: ") + std::strerror(errno));
    log_ = new (memory) CommitLog();
  }
  ~SharedCommitLog() {
    log_->~CommitLog();
    ::munmap(log_, sizeof(CommitLog));
  }
  SharedCommitLog(const SharedCommitLog&) = delete;
  SharedCommitLog& operator=(const SharedCommitLog&) = delete;

  CommitLog* get() const { return log_; }

 private:
  CommitLog* log_ = nullptr;
};

// ThreadSanitizer runs a background thread of its own from the start, and
// handles fork() itself.
#if defined(__SANITIZE_THREAD__)
constexpr int kRuntimeThreads = 1;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr int kRuntimeThreads = 1;
#else
constexpr int kRuntimeThreads = 0;
#endif
#else
constexpr int kRuntimeThreads = 0;
#endif

// The threads of this process, from /proc (0 if unreadable).
int thread_count() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  }
  return 0;
}

void write_all(int fd, const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

// host:port for the index-th process: port + index, or port 0 for each.
std::string listen_for_process(const std::string& listen, int index) {
  const std::size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return listen;
  const int port = std::stoi(listen.substr(colon + 1));
  return port == 0 ? listen : listen.substr(0, colon + 1) + std::to_string(port + index);
}

nlohmann::json histogram_json(const LatencyHistogram& h) {
  return {{"buckets", h.buckets()}, {"max_ns", h.max_ns()}};
}

LatencyHistogram histogram_from(const nlohmann::json& j) {
  LatencyHistogram h;
  if (!j.is_object()) return h;
  for (const auto& b : j.value("buckets", nlohmann::json::array())) {
    h.add_bucket(b[0].get<std::size_t>(), b[1].get<std::uint64_t>());
  }
  h.set_max_at_least(j.value("max_ns", std::uint64_t{0}));
  return h;
}

// A child's whole life after fork(): run, report into fd, exit.
[[noreturn]] void child_main(const ProgramOptions& options, int index, SharedTotals& slot,
                             CommitLog* log, int fd) {
  RunOptions o = options.run;
  o.log_tag = "p" + std::to_string(index + 1);
  o.process_index = index;
  o.processes = options.processes;
  o.commit_log = log;
  o.progress = false;
  o.on_tick = [&slot](const RenderTotals& t) {
    slot.renders.store(t.renders, std::memory_order_relaxed);
    slot.failed.store(t.failed, std::memory_order_relaxed);
    slot.latency_sum_ms.store(t.latency_sum_ms, std::memory_order_relaxed);
    slot.latency_sumsq_ms.store(t.latency_sumsq_ms, std::memory_order_relaxed);
  };
  if (!o.metrics_listen.empty()) o.metrics_listen = listen_for_process(o.metrics_listen, index);
  nlohmann::json message;
  int status = kExitOk;
  try {
    const RunResult r = run(o);
    message = {{"result", to_json(r)},
               {"render_latency", histogram_json(r.render_latency)},
               {"sightings", histogram_json(r.sightings)},
               {"failures", failures_of(r)}};
  } catch (const std::exception& e) {
    message = {{"error", e.what()}};
    status = kExitFailed;
  }
  write_all(fd, message.dump());
  ::close(fd);
  std::fflush(nullptr);
  ::_exit(status);
}

struct Child {
  pid_t pid = -1;
  int fd = -1;  // read end of its pipe; -1 once at its end
  std::string output;
  int exit_status = -1;  // -1: a signal ended it
};

std::vector<Child> start_children(const ProgramOptions& options, SharedSlots& slots,
                                  CommitLog* log) {
  std::vector<Child> children(static_cast<std::size_t>(options.processes));
  std::fflush(nullptr);  // or a child's exit flushes the parent's buffers again
  for (std::size_t i = 0; i < children.size(); ++i) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(std::strerror(errno));
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
      ::close(fds[0]);
      for (std::size_t j = 0; j < i; ++j) ::close(children[j].fd);
      child_main(options, static_cast<int>(i), slots[i], log, fds[1]);
    }
    ::close(fds[1]);
    children[i].pid = pid;
    children[i].fd = fds[0];
  }
  return children;
}

// Reads what the children wrote until every pipe is at its end, showing the
// combined progress and passing a stop request on.
void watch_children(std::vector<Child>& children, const SharedSlots& slots,
                    const RunOptions& run_options) {
  ProgressDisplay progress(run_options.progress, run_options.progress_interval,
                           run_options.duration, "");
  const auto start = Clock::now();
  bool forwarded = false;
  for (;;) {
    std::vector<pollfd> fds;
    std::vector<Child*> readers;
    for (Child& c : children) {
      if (c.fd >= 0) {
        fds.push_back({c.fd, POLLIN, 0});
        readers.push_back(&c);
      }
    }
    if (fds.empty()) break;
    if (::poll(fds.data(), fds.size(), 100) > 0) {
      for (std::size_t i = 0; i < fds.size(); ++i) {
        if (fds[i].revents == 0) continue;
        char buffer[65536];
        const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
        if (n > 0) {
          readers[i]->output.append(buffer, static_cast<std::size_t>(n));
        } else if (n == 0 || errno != EINTR) {
          ::close(readers[i]->fd);
          readers[i]->fd = -1;
        }
      }
    }
    if (stop_requested() && !forwarded) {
      forwarded = true;
      const int signal = stop_signal() > 0 ? stop_signal() : SIGTERM;
      for (const Child& c : children) ::kill(c.pid, signal);
    }
    progress.update(std::chrono::duration<double>(Clock::now() - start).count(), slots.sum());
  }
  progress.finish();
  for (Child& c : children) {
    int status = 0;
    while (::waitpid(c.pid, &status, 0) < 0 && errno == EINTR) {
    }
    c.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
}

// The threads of this process besides the sanitizer's, once the pool's
// connector threads (detached: ~Pool never waits for a connect) have ended:
// the setup pool's connector delivered its connection, so it is only
// returning, but the kernel may not have reaped it yet.
int settled_thread_count() {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  int threads = thread_count() - kRuntimeThreads;
  while (threads > 1 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    threads = thread_count() - kRuntimeThreads;
  }
  return threads;
}

}  // namespace

ProgramOutcome run_processes(const ProgramOptions& options, std::FILE* tables) {
  const int threads = settled_thread_count();
  if (threads != 1) {
    throw std::logic_error("--processes forks its workers before any thread starts, but " +
                           std::to_string(threads) + " threads run");
  }
  SharedSlots slots(static_cast<std::size_t>(options.processes));
  std::optional<SharedCommitLog> log;
  if (options.run.scenario == Scenario::kSettingsWrite) log.emplace();
  std::vector<Child> children = start_children(options, slots, log ? log->get() : nullptr);
  watch_children(children, slots, options.run);
  std::vector<ProcessReport> reports;
  for (std::size_t i = 0; i < children.size(); ++i) {
    ProcessReport report;
    report.index = static_cast<int>(i) + 1;
    report.pid = children[i].pid;
    report.exit_status = children[i].exit_status;
    const nlohmann::json message =
        nlohmann::json::parse(children[i].output, nullptr, /*allow_exceptions=*/false);
    if (message.is_object() && message.contains("result")) {
      report.result = message["result"];
      report.render_latency = histogram_from(message["render_latency"]);
      report.sightings = histogram_from(message["sightings"]);
      report.failures = message.value("failures", std::vector<std::string>{});
    } else {
      report.error = message.is_object() ? message.value("error", std::string("no result"))
                                         : "ended without a result (exit status " +
                                               std::to_string(report.exit_status) + ")";
    }
    reports.push_back(std::move(report));
  }
  std::optional<CommitLog::Windows> windows;
  if (log) windows = log->get()->windows(options.processes);
  return combine(options, reports, windows ? &*windows : nullptr, tables);
}

}  // namespace poolscope::load
