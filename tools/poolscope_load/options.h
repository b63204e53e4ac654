// poolscope-load's command line: the flags, their checks (messages say what
// was expected and what was given), the environment they fall back to
// (DATABASE_URL; libpq's PGPASSWORD and PGPASSFILE through the driver), and
// the checks that must pass before any run starts.
//
// Called from main's thread before anything else runs.

#pragma once

#include <optional>
#include <string>

#include "program.h"

namespace poolscope::load {

// Either options to run with, or the exit status to end with at once (after
// --help, --version, or a usage error, already printed).
struct CommandLine {
  std::optional<ProgramOptions> options;
  int exit_status = kExitOk;
  // --db came from the command line with a password in it.
  bool password_in_arguments = false;
  // --redis came from the command line with a password in it.
  bool redis_password_in_arguments = false;
};

CommandLine parse_command_line(int argc, char** argv);

// Overwrites the password of a --db or --redis URL in argv with '*', so that ps and
// /proc/<pid>/cmdline show it no longer (they showed it until now: the
// environment is the safe way, and the warning says so).
void mask_password_in_arguments(int argc, char** argv);

}  // namespace poolscope::load
