// --processes: what one worker process reported, and the combined summary
// and JSON of all of them (run_processes in program.h runs them).
//
// Free functions of the reports; nothing shared.

#pragma once

#include <sys/types.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commit_log.h"
#include "latency.h"
#include "program.h"

namespace poolscope::load {

struct ProcessReport {
  int index = 0;  // 1-based, as in the log tags ("p1")
  pid_t pid = -1;
  int exit_status = -1;   // -1: a signal ended it
  nlohmann::json result;  // its to_json(RunResult); null if it produced none
  LatencyHistogram render_latency;
  LatencyHistogram sightings;         // settings-write: its first reads of saves
  std::vector<std::string> failures;  // as failures_of() said
  std::string error;                  // why there is no result
};

// Prints the per-process table and the totals to tables; returns the
// combined JSON ({"processes": N, "per_process": [...], totals...}) and the
// failures, each naming its process. windows: settings-write's
// cross-process staleness windows (null in other scenarios).
ProgramOutcome combine(const ProgramOptions& options, const std::vector<ProcessReport>& reports,
                       const CommitLog::Windows* windows, std::FILE* tables);

}  // namespace poolscope::load
