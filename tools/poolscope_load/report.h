// poolscope-load's output: the summary table for people, JSON for scripts.

#pragma once

#include <cstdio>

#include <nlohmann/json.hpp>

#include "runner.h"

namespace poolscope::load {

void print_summary(std::FILE* out, const RunResult& result);

nlohmann::json to_json(const RunResult& result);

}  // namespace poolscope::load
