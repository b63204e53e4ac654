// poolscope-load: the incidents' dashboard-widget load, run against a real
// database through poolscope, so the session churn and its fixes can be
// seen and measured.
//
//   poolscope-load                                  # embedded SQLite, mode pool
//   poolscope-load --mode reuse --threads 8 --duration 10
//   DATABASE_URL=postgresql://app:pw@127.0.0.1:5432/app poolscope-load --json out.json
//
// Exit status, one per kind of ending:
//   0    every run finished and nothing failed
//   1    a runtime failure: the database could not be set up, a render
//        failed (a checkout timeout included), a read was stale, an
//        invariant broke, the metrics address is taken, the JSON could not
//        be written at the end
//   2    a usage error: bad options, options that do not fit together, a
//        --json path that cannot be opened, a malformed --metrics address
//   130  interrupted (128 + the signal; Ctrl-C is SIGINT, 2), single run,
//        --compare or --processes alike, when nothing failed before it;
//        the summary and JSON are still written, marked interrupted/partial

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "options.h"
#include "poolscope/exporters/metrics_server.h"
#include "poolscope/pool/errors.h"
#include "program.h"

namespace {

using namespace poolscope::load;

// --json PATH, checked before anything runs (so an hour's run does not end
// in "cannot write"), written at the end.
class JsonOutput {
 public:
  // Empty path: no JSON. Returns an error message, or empty.
  std::string open(const std::string& path) {
    path_ = path;
    if (path.empty() || path == "-") return {};
    existed_ = ::access(path.c_str(), F_OK) == 0;
    const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return "cannot write --json " + path + ": " + std::strerror(errno);
    ::close(fd);
    return {};
  }
  // Returns false (having said why) when the file cannot be written.
  bool write(const nlohmann::json& json) {
    written_ = true;
    const std::string text = json.dump(2) + "\n";
    if (path_ == "-") {
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
      return true;
    }
    std::ofstream out(path_, std::ios::trunc);
    out << text;
    if (out.flush()) return true;
    std::fprintf(stderr, "poolscope-load: cannot write %s\n", path_.c_str());
    return false;
  }
  // A file this program created but never wrote goes again.
  ~JsonOutput() {
    if (!written_ && !existed_ && !path_.empty() && path_ != "-") ::unlink(path_.c_str());
  }
  bool enabled() const { return !path_.empty(); }
  bool to_stdout() const { return path_ == "-"; }

 private:
  std::string path_;
  bool existed_ = true;
  bool written_ = false;
};

// --metrics HOST:PORT, listened on once (by each process's port) and let go,
// so a bad address or a port in use shows before the run. Returns the exit
// status to end with, or kExitOk.
int check_metrics_listen(const ProgramOptions& options) {
  if (options.run.metrics_listen.empty()) return kExitOk;
  try {
    const std::string& listen = options.run.metrics_listen;
    const std::size_t colon = listen.rfind(':');
    const int port = colon == std::string::npos ? -1 : std::atoi(listen.c_str() + colon + 1);
    for (int i = 0; i < (port > 0 ? options.processes : 1); ++i) {
      const std::string address =
          i == 0 ? listen : listen.substr(0, colon + 1) + std::to_string(port + i);
      poolscope::exporters::MetricsServer probe(
          std::make_shared<poolscope::exporters::MetricsCollector>(),
          poolscope::exporters::MetricsServerConfig{.listen = address});
    }
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "poolscope-load: --metrics: %s\n", e.what());
    return kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "poolscope-load: --metrics: %s\n", e.what());
    return kExitFailed;
  }
  return kExitOk;
}

// Runs what the options ask for; the exit status. Exceptions that mean no
// run could happen at all end here, each said once.
int run_and_report(const ProgramOptions& options, JsonOutput& json) {
  std::FILE* const tables = json.to_stdout() ? stderr : stdout;
  ProgramOutcome outcome;
  try {
    prepare_database(options.run);
    outcome = options.processes > 1 ? run_processes(options, tables)
              : options.compare     ? run_comparison(options, tables)
                                    : run_single(options, tables);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "poolscope-load: %s\n", e.what());
    return kExitUsage;
  } catch (const poolscope::Error& e) {
    std::fprintf(stderr, "poolscope-load: %s\n", e.what());
    return kExitFailed;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "poolscope-load: setting up %s failed: %s\n",
                 poolscope::redact_url(options.run.url).c_str(), e.what());
    return kExitFailed;
  }
  bool failed = false;
  if (json.enabled()) failed = !json.write(outcome.json);
  for (const std::string& f : outcome.failures) {
    std::fprintf(stderr, "poolscope-load: %s\n", f.c_str());
    failed = true;
  }
  if (failed) return kExitFailed;
  if (outcome.interrupted) {
    std::fprintf(stderr, "poolscope-load: %s\n", outcome.interrupted_note.c_str());
    return interrupted_exit_status(stop_signal());
  }
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CommandLine command_line = parse_command_line(argc, argv);
  if (!command_line.options) return command_line.exit_status;
  const ProgramOptions& options = *command_line.options;
  if (command_line.password_in_arguments) {
    std::fprintf(stderr,
                 "poolscope-load: warning: the password in --db is visible to other local users "
                 "(ps, /proc/%d/cmdline) until it is masked now; pass the URL in DATABASE_URL, or "
                 "the password in PGPASSWORD or a PGPASSFILE\n",
                 static_cast<int>(::getpid()));
  }
  if (command_line.redis_password_in_arguments) {
    std::fprintf(stderr,
                 "poolscope-load: warning: the password in --redis is visible to other local "
                 "users (ps, /proc/%d/cmdline) until it is masked now\n",
                 static_cast<int>(::getpid()));
  }
  if (command_line.password_in_arguments || command_line.redis_password_in_arguments) {
    mask_password_in_arguments(argc, argv);
  }
  JsonOutput json;
  if (const std::string error = json.open(options.json_path); !error.empty()) {
    std::fprintf(stderr, "poolscope-load: %s\n", error.c_str());
    return kExitUsage;
  }
  if (const int status = check_metrics_listen(options); status != kExitOk) return status;
  // Ctrl-C or SIGTERM ends the run early, with its summary; in --compare,
  // the runs not yet started are skipped.
  std::signal(SIGINT, [](int signal) { request_stop(signal); });
  std::signal(SIGTERM, [](int signal) { request_stop(signal); });
  return run_and_report(options, json);
}
