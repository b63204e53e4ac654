// poolscope-bench-report: turns the outputs of scripts/bench.sh (Google
// Benchmark's JSON, and poolscope-load --compare --json on SQLite and on
// PostgreSQL) into docs/benchmarks.md: the machine, the commands, tables with
// ratios, and the performance goals with what was measured against them.

#include <sys/utsname.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>

#include "poolscope/base/duration_text.h"

namespace {

using nlohmann::json;

json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  return json::parse(in);
}

std::string first_line_with(const std::string& path, const std::string& prefix) {
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(prefix, 0) == 0) {
      const auto colon = line.find(':');
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      return value;
    }
  }
  return "unknown";
}

std::string command_output(const std::string& command) {
  std::string out;
  if (FILE* pipe = ::popen(command.c_str(), "r")) {
    char buffer[512];
    while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) out += buffer;
    ::pclose(pipe);
  }
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// Median real and CPU time in ns of "<name>/real_time/threads:<n>".
struct Timing {
  double real_ns = 0;
  double cpu_ns = 0;
};

class BenchResults {
 public:
  explicit BenchResults(const json& doc) {
    for (const json& b : doc["benchmarks"]) {
      if (b.value("aggregate_name", "") != "median") continue;
      std::string name = b["run_name"];
      const double scale = b.value("time_unit", "ns") == "ms"   ? 1e6
                           : b.value("time_unit", "ns") == "us" ? 1e3
                                                                : 1;
      timings_[name] = {b["real_time"].get<double>() * scale, b["cpu_time"].get<double>() * scale};
      for (const char* counter : {"bytes", "sites"}) {
        if (b.contains(counter)) counters_[name + ":" + counter] = b[counter].get<double>();
      }
    }
  }
  std::optional<Timing> at(const std::string& name, int threads) const {
    const std::string key = name + "/real_time/threads:" + std::to_string(threads);
    const auto it = timings_.find(key);
    if (it != timings_.end()) return it->second;
    const auto plain = timings_.find(name);
    if (plain != timings_.end() && threads == 1) return plain->second;
    return std::nullopt;
  }
  std::optional<double> counter(const std::string& name, const std::string& counter) const {
    const auto it = counters_.find(name + ":" + counter);
    return it == counters_.end() ? std::nullopt : std::optional<double>(it->second);
  }

 private:
  std::map<std::string, Timing> timings_;
  std::map<std::string, double> counters_;
};

std::string ns(const std::optional<Timing>& t) {
  if (!t) return "n/a";
  char text[64];
  std::snprintf(text, sizeof text, "%.1f (%.1f)", t->real_ns, t->cpu_ns);
  return text;
}

std::string times(double x) {
  char text[32];
  std::snprintf(text, sizeof text, x >= 100 ? "%.0fx" : "%.2fx", x);
  return text;
}

// A latency in seconds, or "-" when nothing was measured.
std::string latency(double seconds) {
  return seconds > 0 ? poolscope::duration_text(seconds) : "-";
}

std::string ratio(const std::optional<Timing>& slow, const std::optional<Timing>& fast) {
  if (!slow || !fast || fast->real_ns <= 0) return "n/a";
  return times(slow->real_ns / fast->real_ns);
}

// A poolscope-load --compare document; refuses a partial one (cut short by
// a signal), whose modes did not run alike.
json read_comparison(const std::string& path) {
  json doc = read_json(path);
  if (!doc.contains("compare") || !doc.contains("ratios")) {
    throw std::runtime_error(path + " is not the JSON of poolscope-load --compare");
  }
  if (doc.value("partial", false)) {
    throw std::runtime_error(
        path + " holds a partial comparison (poolscope-load --compare was interrupted)");
  }
  return doc;
}

// A mode's ratio against pool mode, as poolscope-load --compare computed it.
std::optional<double> vs_pool(const json& doc, const std::string& mode, const char* figure) {
  const json& ratios = doc["ratios"];
  if (!ratios.contains(mode) || !ratios[mode].contains(figure)) return std::nullopt;
  return ratios[mode][figure].get<double>();
}

void compare_table(std::ostream& out, const json& doc) {
  const json& runs = doc["compare"];
  if (runs.empty()) return;
  out << "| mode | renders/s | vs pool | checkouts per render | reuses per render | sessions "
         "opened | "
         "sessions avoided per render | acquire p99 |\n|---|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const json& r : runs) {
    char line[512];
    const std::string mode = r["mode"];
    const std::optional<double> rate_vs_pool = vs_pool(doc, mode, "renders_per_s_vs_pool");
    std::snprintf(line, sizeof line, "| %s | %.1f | %s | %.4g | %.4g | %llu | %.2f | %s |\n",
                  mode.c_str(), r["renders_per_s"].get<double>(),
                  rate_vs_pool ? times(*rate_vs_pool).c_str() : "n/a",
                  r["checkouts_per_render"].get<double>(), r["reuses_per_render"].get<double>(),
                  static_cast<unsigned long long>(r["connections_opened"].get<std::uint64_t>()),
                  r.value("sessions_avoided_per_render", 0.0),
                  latency(r["acquire_p99_s"].get<double>()).c_str());
    out << line;
  }
  const json& first = runs.front();
  out << "\n"
      << first["threads"].get<int>() << " threads, "
      << std::to_string(first["duration_s"].get<double>()).substr(0, 4) << " s per mode, pool "
      << first["pool_size"].get<int>() << " + " << first["max_overflow"].get<int>() << ", database "
      << first["url"].get<std::string>() << ".\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::string bench_path, sqlite_path, postgres_path, commands = "bash scripts/bench.sh";
  CLI::App app{"poolscope-bench-report: writes docs/benchmarks.md from scripts/bench.sh's outputs"};
  app.add_option("--bench", bench_path, "poolscope-bench --benchmark_out JSON")->required();
  app.add_option("--sqlite", sqlite_path, "poolscope-load --compare --json on SQLite")->required();
  app.add_option("--postgres", postgres_path, "poolscope-load --compare --json on PostgreSQL")
      ->required();
  app.add_option("--commands", commands, "How the figures were made");
  CLI11_PARSE(app, argc, argv);

  try {
    const json bench_doc = read_json(bench_path);
    const BenchResults bench(bench_doc);
    const json sqlite = read_comparison(sqlite_path);
    const json postgres = read_comparison(postgres_path);

    utsname uts{};
    ::uname(&uts);
    // When the benchmarks ran, as Google Benchmark recorded it.
    const std::string date =
        bench_doc.contains("context") ? bench_doc["context"].value("date", "?") : "?";

    std::ostringstream out;
    out << "# poolscope benchmarks\n\n"
        << "Measured by `" << commands << "` on " << date
        << ". Every figure below comes from that one run (raw results in `docs/benchmarks-raw/`); "
           "rerun the "
           "script to measure your own machine.\n\n"
        << "## Machine\n\n"
        << "| | |\n|---|---|\n"
        << "| CPU | " << first_line_with("/proc/cpuinfo", "model name") << " |\n"
        << "| cores | " << command_output("nproc") << " |\n"
        << "| memory | " << first_line_with("/proc/meminfo", "MemTotal") << " |\n"
        << "| kernel | " << uts.sysname << " " << uts.release << " " << uts.machine << " |\n"
        << "| clocksource | "
        << command_output("cat /sys/devices/system/clocksource/clocksource0/current_clocksource")
        << " |\n"
        << "| compiler | " << command_output("c++ --version | head -n 1") << " |\n"
        << "| build | Release (-O3), SOCI "
        << command_output("dpkg-query -W -f='${Version}' libsoci-dev") << " |\n\n";

    out << "## Checkout cost: acquire + release\n\n"
        << "Nanoseconds per operation, median of "
        << bench_doc["benchmarks"][0].value("repetitions", 0)
        << " repetitions run in random order across benchmarks (so a slow spell of the machine "
           "falls on "
           "all of them alike): wall-clock time over all threads' operations, then CPU time per "
           "operation in "
           "parentheses. SQLite connections opened up front, so the database is not what is "
           "measured. "
           "1 and 2 threads use a pool of 4; 16 threads share a pool of 8.\n\n"
        << "| benchmark | what | 1 thread | 2 threads | 16 threads |\n|---|---|---:|---:|---:|\n";
    const std::pair<const char*, const char*> rows[] = {
        {"BM_SociConnectionPoolSession", "`soci::session sql(pool)`, SOCI's RAII lease"},
        {"BM_SociConnectionPoolLease", "SOCI's bare `lease()` / `give_back()`"},
        {"BM_PoolAcquireRelease", "`pool.acquire()` + release, tracing off"},
        {"BM_PoolAcquireReleaseTraced", "the same with tracing on, as shipped"},
        {"BM_PoolAcquireReleaseTracedStacks", "tracing with a stack captured per checkout"},
        {"BM_PoolNestedReuse", "a nested `acquire()` sharing the thread's lease"}};
    for (const auto& [name, what] : rows) {
      out << "| `" << name << "` | " << what << " | " << ns(bench.at(name, 1)) << " | "
          << ns(bench.at(name, 2)) << " | " << ns(bench.at(name, 16)) << " |\n";
    }
    const auto session = [&](int t) { return bench.at("BM_SociConnectionPoolSession", t); };
    const auto lease = [&](int t) { return bench.at("BM_SociConnectionPoolLease", t); };
    const auto plain = [&](int t) { return bench.at("BM_PoolAcquireRelease", t); };
    const auto traced = [&](int t) { return bench.at("BM_PoolAcquireReleaseTraced", t); };
    out << "\n| ratio | 1 thread | 2 threads | 16 threads |\n|---|---:|---:|---:|\n"
        << "| `soci::session sql(pool)` / poolscope traced | " << ratio(session(1), traced(1))
        << " | " << ratio(session(2), traced(2)) << " | " << ratio(session(16), traced(16))
        << " |\n"
        << "| `soci::session sql(pool)` / poolscope untraced | " << ratio(session(1), plain(1))
        << " | " << ratio(session(2), plain(2)) << " | " << ratio(session(16), plain(16)) << " |\n"
        << "| poolscope traced / SOCI bare lease | " << ratio(traced(1), lease(1)) << " | "
        << ratio(traced(2), lease(2)) << " | " << ratio(traced(16), lease(16)) << " |\n"
        << "| poolscope traced / untraced (cost of tracing) | " << ratio(traced(1), plain(1))
        << " | " << ratio(traced(2), plain(2)) << " | " << ratio(traced(16), plain(16)) << " |\n\n";

    out << "## Cache hits\n\n"
        << "Nanoseconds per hit (CPU time in parentheses). 1,024 string keys longer than the "
           "small-string "
           "buffer, values `std::shared_ptr<const std::string>`; each thread walks the keys in its "
           "own order. "
           "The baseline is what a user would write: one `std::mutex` around a "
           "`std::unordered_map`.\n\n"
        << "| benchmark | 1 thread | 2 threads |\n|---|---:|---:|\n";
    for (const char* name : {"BM_TtlCacheHit", "BM_SettingsCacheHit", "BM_MutexUnorderedMapHit"}) {
      out << "| `" << name << "` | " << ns(bench.at(name, 1)) << " | " << ns(bench.at(name, 2))
          << " |\n";
    }
    out << "| mutex + map / `TtlCache` | "
        << ratio(bench.at("BM_MutexUnorderedMapHit", 1), bench.at("BM_TtlCacheHit", 1)) << " | "
        << ratio(bench.at("BM_MutexUnorderedMapHit", 2), bench.at("BM_TtlCacheHit", 2)) << " |\n\n";

    if (const auto scrape = bench.at("BM_MetricsScrape1000Sites", 1)) {
      char line[256];
      std::snprintf(line, sizeof line,
                    "## One Prometheus scrape\n\nCollecting and serializing every family with %.0f "
                    "call sites "
                    "registered: %.2f ms, %.0f KB of text (`BM_MetricsScrape1000Sites`).\n\n",
                    bench.counter("BM_MetricsScrape1000Sites", "sites").value_or(0),
                    scrape->real_ns / 1e6,
                    bench.counter("BM_MetricsScrape1000Sites", "bytes").value_or(0) / 1024);
      out << line;
    }

    out << "## poolscope-load --compare\n\nThe incidents' dashboard widget (20 rows, 3 settings "
           "reads each) in "
           "every mode, back to back.\n\n### SQLite (embedded file)\n\n";
    compare_table(out, sqlite);
    out << "\n### PostgreSQL (throwaway server on 127.0.0.1)\n\n";
    compare_table(out, postgres);

    auto goal = [&](const std::string& what, bool met, const std::string& measured) {
      out << "| " << what << " | " << measured << " | " << (met ? "met" : "**not met**") << " |\n";
    };
    out << "\n## Goals\n\n| goal | measured | |\n|---|---|---|\n";
    for (int t : {1, 2}) {
      const bool known = session(t) && traced(t);
      goal("traced acquire+release at least 3x cheaper than `soci::session sql(pool)`, " +
               std::to_string(t) + (t == 1 ? " thread" : " threads"),
           known && session(t)->real_ns / traced(t)->real_ns >= 3, ratio(session(t), traced(t)));
    }
    if (const auto nested = bench.at("BM_PoolNestedReuse", 1)) {
      char text[32];
      std::snprintf(text, sizeof text, "%.1f ns", nested->real_ns);
      goal("a nested reuse under 20 ns", nested->real_ns < 20, text);
    }
    for (int t : {1, 2}) {
      const bool known = plain(t) && traced(t);
      goal("tracing on costs less than 15% more than off, " + std::to_string(t) +
               (t == 1 ? " thread" : " threads"),
           known && traced(t)->real_ns / plain(t)->real_ns < 1.15, ratio(traced(t), plain(t)));
    }
    const auto map2 = bench.at("BM_MutexUnorderedMapHit", 2), ttl2 = bench.at("BM_TtlCacheHit", 2);
    goal("a cache hit at least 2x faster than mutex + unordered_map, 2 threads",
         map2 && ttl2 && map2->real_ns / ttl2->real_ns >= 2, ratio(map2, ttl2));
    for (const auto& [name, doc] : {std::pair{"SQLite", &sqlite}, {"PostgreSQL", &postgres}}) {
      double cached_checkouts = 1;
      for (const json& r : (*doc)["compare"]) {
        if (r["mode"] == "cached") cached_checkouts = r["checkouts_per_render"];
      }
      const std::optional<double> cached_vs_pool = vs_pool(*doc, "cached", "renders_per_s_vs_pool");
      char text[96];
      std::snprintf(text, sizeof text, "%s, %.2g checkouts per render",
                    cached_vs_pool ? times(*cached_vs_pool).c_str() : "n/a", cached_checkouts);
      goal(std::string("cached mode: at most 0.01 checkouts per render and 100x the renders/s of "
                       "pool mode, ") +
               name,
           cached_checkouts <= 0.01 && cached_vs_pool.value_or(0) >= 100, text);
    }
    out << "\n## Reading the numbers\n\n"
        << "- Times are wall-clock per operation over all threads together, so 2 threads that "
           "scale show half "
           "the 1-thread time; the CPU time in parentheses is per thread.\n"
        << "- 16 threads on a pool of 8: poolscope hands a returned connection to the longest "
           "waiter (first come, "
           "first served, as its users are promised), which costs a wake-up and a context switch "
           "per hand-off on "
           "2 cores. SOCI's pool lets whichever thread runs next take it. Under that much "
           "oversubscription the two "
           "are of the same order; fairness is the price of no starved waiter.\n"
        << "- The cost of tracing is a few nanoseconds (a thread-local site lookup and three "
           "counter updates per "
           "check-in); between runs on a shared VM it moves by about as much as it measures, so "
           "read the ratio "
           "with the absolute figures.\n"
        << "- `TtlCache` on 1 thread pays for what the baseline does not do (a TTL check, the "
           "clock bit, "
           "statistics, a shard and a CPU slot to find); from 2 threads on, the baseline's one "
           "mutex moves between "
           "cores on every read, while a `TtlCache` reader locks only its own CPU's slot.\n"
        << "- In poolscope-load, \"sessions opened\" counts connections opened during the measured "
           "run; the "
           "seeding step before it opens the first one, which `cached` mode then reuses for its "
           "few loads.\n";
    std::cout << out.str();
  } catch (const std::exception& e) {
    std::cerr << "poolscope-bench-report: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
