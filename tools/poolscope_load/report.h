// poolscope-load's output: the summary table for people, JSON for scripts.

#pragma once

#include <cstdio>
#include <vector>

#include <nlohmann/json.hpp>

#include "runner.h"

namespace poolscope::load {

void print_summary(std::FILE* out, const RunResult& result);

nlohmann::json to_json(const RunResult& result);

// --compare: one table of every mode's run, with ratios against pool mode.
void print_comparison(std::FILE* out, const std::vector<RunResult>& results);
nlohmann::json comparison_json(const std::vector<RunResult>& results);

}  // namespace poolscope::load
