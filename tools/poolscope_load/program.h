// poolscope-load as a program: its options beyond one run, the three ways
// it runs (one run, --compare's interleaved rounds, --processes' worker
// processes), and the exit statuses.
//
// The run_* functions are called from main's thread, one at a time.

#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runner.h"

namespace poolscope::load {

inline constexpr int kExitOk = 0;
// The database could not be set up, a render failed, a read was stale, an
// invariant broke, the metrics address is taken, the JSON could not be written.
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;  // bad options
// 128 + the signal that ended the run early (130 for Ctrl-C).
inline int interrupted_exit_status(int signal) noexcept { return signal > 0 ? 128 + signal : 130; }

struct ProgramOptions {
  RunOptions run;
  std::string json_path;  // empty: none; "-": stdout (the tables then go to stderr)
  bool compare = false;
  int repeats = 3;    // --compare: rounds, each running every mode once
  int processes = 1;  // worker processes, each with its own pool and caches
};

// What a way of running produced: its JSON document, and what went wrong.
struct ProgramOutcome {
  nlohmann::json json;
  std::vector<std::string> failures;  // one sentence each; any fails the program
  bool interrupted = false;           // a stop request cut it short
  std::string interrupted_note;       // said when interrupted
};

// Each prints its tables to `tables` and returns the outcome. Throw what
// run() throws when nothing could run at all.
ProgramOutcome run_single(const ProgramOptions& options, std::FILE* tables);
ProgramOutcome run_comparison(const ProgramOptions& options, std::FILE* tables);
ProgramOutcome run_processes(const ProgramOptions& options, std::FILE* tables);

// Creates and seeds the scenario's tables once, before any run, through a
// pool of its own (no tracer: an unreachable database is reported once, by
// the exception). Throws poolscope::Error, soci::soci_error.
void prepare_database(const RunOptions& options);

}  // namespace poolscope::load
