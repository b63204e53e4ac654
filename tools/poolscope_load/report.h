// poolscope-load's output: the summary table for people, JSON for scripts.

#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>
#include <vector>

#include "runner.h"

namespace poolscope::load {

void print_summary(std::FILE* out, const RunResult& result);

nlohmann::json to_json(const RunResult& result);

// --compare's modes, in the order they run.
inline constexpr Mode kCompareModes[] = {Mode::kNaive, Mode::kPool, Mode::kReuse, Mode::kCached};

// Whether --compare's results lack a mode or hold a run cut short.
bool is_partial(const std::vector<RunResult>& results);

// --compare: one table of every mode's run, with ratios against pool mode
// (none when pool mode did not run); a partial comparison says so, and
// which modes did not run. The JSON: {"compare": [runs], "ratios": {mode:
// {"renders_per_s_vs_pool", "checkouts_per_render_vs_pool"}}, "partial",
// "modes_not_run"}.
void print_comparison(std::FILE* out, const std::vector<RunResult>& results);
nlohmann::json comparison_json(const std::vector<RunResult>& results);

}  // namespace poolscope::load
