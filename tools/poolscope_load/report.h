// poolscope-load's output for one run: the summary table for people, JSON
// for scripts, and the failures that decide the exit status. Failed render
// attempts count in every per-render figure (attempts are the denominator)
// and are shown as pgbench shows them: "failed  N (x%)".
//
// Free functions of a RunResult; nothing shared.

#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runner.h"

namespace poolscope::load {

void print_summary(std::FILE* out, const RunResult& result);

nlohmann::json to_json(const RunResult& result);

// "12 (3.468% of 346 attempts...)" and the like, for a table row.
std::string failed_text(std::uint64_t failed, std::uint64_t attempts);

// "p50 3.0 ms, p90 4.1 ms, p99 6.0 ms, max 13.2 ms".
std::string latency_text(const LatencyHistogram& latency);

// The render latency fields of the JSON (render_latency_p50_s, _p90_s,
// _p99_s, _max_s), added to out.
void add_render_latency(nlohmann::json& out, const LatencyHistogram& latency);

// The Redis tier's rows (--redis) and settings-write's late reads and
// staleness rows of the summary; their fields of the JSON (report_redis.cc).
void print_redis(std::FILE* out, const RunResult& result);
void print_staleness(std::FILE* out, const RunResult& result);
void add_redis_json(nlohmann::json& out, const RunResult& result);

// The staleness window's figures (sorted_ms: one per save, sorted): as JSON
// fields (staleness_saves, _unseen, _p50_ms, _p99_ms, _max_ms) and as a row.
void add_staleness_json(nlohmann::json& out, const std::vector<double>& sorted_ms,
                        std::uint64_t unseen);
std::string staleness_text(const std::vector<double>& sorted_ms, std::uint64_t unseen);
// The nearest-rank quantile q of sorted values (0 for none).
double quantile_of_sorted(const std::vector<double>& sorted, double q);

// What went wrong in a run, one sentence each (empty: nothing): failed
// renders, stale reads, broken invariants. Any of them fails the program.
std::vector<std::string> failures_of(const RunResult& result);

}  // namespace poolscope::load
