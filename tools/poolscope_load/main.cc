// poolscope-load: the incidents' dashboard-widget load, run against a real
// database through poolscope, so the session churn and its fixes can be
// seen and measured.
//
//   poolscope-load                                  # embedded SQLite, mode pool
//   poolscope-load --mode reuse --threads 8 --duration 10
//   poolscope-load --db postgresql://app:pw@127.0.0.1:5432/app --json out.json
//
// Exit status: 0 when every run finished cleanly (checkout timeouts are
// measured, not failures; Ctrl-C ends a single run early with its summary),
// 1 when the database cannot be set up, a render failed, a read was stale or
// an invariant broke, 2 for bad options, and 128 + the signal (130 for
// Ctrl-C) for a --compare that a signal cut short: its table and JSON are
// then marked partial.

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <fstream>

#include "poolscope/pool/errors.h"
#include "report.h"
#include "runner.h"

namespace {

using poolscope::load::Mode;

int run(int argc, char** argv) {
  poolscope::load::RunOptions options;
  std::string mode = "pool";
  double duration = options.duration.count();
  double checkout_timeout = options.checkout_timeout.count();
  std::string json_path;
  bool no_progress = false;
  std::string scenario = "widget";
  double leak_threshold = 0;
  double churn_threshold = 0;

  CLI::App app{"poolscope-load: the dashboard-widget session-churn scenario, measured"};
  app.add_option("--db", options.url,
                 "Database URL: sqlite:///path.db, sqlite3://db=app.db, "
                 "postgresql://user:pw@host:5432/db")
      ->capture_default_str();
  app.add_option("--mode", mode,
                 "naive: a new connection per settings read; pool: a pooled lease per read; "
                 "reuse: one lease per render, nested reads share it; cached: accounts and "
                 "settings from poolscope's caches")
      ->check(CLI::IsMember({"naive", "pool", "reuse", "cached"}))
      ->capture_default_str();
  app.add_option("--threads", options.threads, "Worker threads rendering at once")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--duration", duration, "Seconds to run")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--pool-size", options.pool_size, "Connections the pool keeps")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  app.add_option("--max-overflow", options.max_overflow, "Extra connections under load")
      ->check(CLI::Range(0, 10000))
      ->capture_default_str();
  app.add_option("--checkout-timeout", checkout_timeout, "Seconds an acquire may wait")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--scenario", scenario,
                 "widget: render as fast as possible; leak: the same plus one export that "
                 "holds its lease past --leak-threshold; settings-write: saves mixed in, every "
                 "read checked against the last save; oversubscribe: far more threads than "
                 "connections (default 32 threads on a 4 + 2 pool), invariants checked")
      ->check(CLI::IsMember({"widget", "leak", "settings-write", "oversubscribe"}))
      ->capture_default_str();
  auto* leak_option = app.add_option("--leak-threshold", leak_threshold,
                                     "Seconds a lease may be held before it is reported "
                                     "(default 2 for --scenario leak, else 30)")
                          ->check(CLI::PositiveNumber);
  auto* churn_option =
      app.add_option("--churn-threshold", churn_threshold,
                     "Acquires per second at one call site that count as churn (default: "
                     "10 checkouts per render at the current render rate)")
          ->check(CLI::NonNegativeNumber);
  app.add_option("--write-every", options.write_every,
                 "settings-write: each worker saves a setting every N renders")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--metrics", options.metrics_listen,
                 "Serve /metrics and /stats.json on HOST:PORT while running (e.g. 127.0.0.1:9464)");
  app.add_flag("--print-stats", options.print_stats,
               "Print the JSON stats snapshot (pools, call sites, caches) at the end, to stderr");
  app.add_option("--json", json_path, "Write the figures as JSON to PATH, or - for stdout");
  app.add_flag("--no-progress", no_progress, "Do not draw the progress bar");
  bool compare = false;
  app.add_flag("--compare", compare,
               "Run the widget scenario in every mode (naive, pool, reuse, cached) back to back, "
               "--duration each, and print one table with ratios against pool");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  options.mode = *poolscope::load::parse_mode(mode);
  if (scenario == "oversubscribe") {
    // Far more threads than connections, unless told otherwise.
    if (app.count("--threads") == 0) options.threads = 32;
    if (app.count("--pool-size") == 0) options.pool_size = 4;
    if (app.count("--max-overflow") == 0) options.max_overflow = 2;
    if (app.count("--checkout-timeout") == 0) checkout_timeout = 5;
  }
  options.duration = std::chrono::duration<double>(duration);
  options.checkout_timeout = std::chrono::duration<double>(checkout_timeout);
  options.progress = !no_progress;
  options.scenario = scenario == "leak"             ? poolscope::load::Scenario::kLeak
                     : scenario == "settings-write" ? poolscope::load::Scenario::kSettingsWrite
                     : scenario == "oversubscribe"  ? poolscope::load::Scenario::kOversubscribe
                                                    : poolscope::load::Scenario::kWidget;
  if (compare && (scenario != "widget" || app.count("--mode") > 0)) {
    std::fprintf(stderr,
                 "poolscope-load: --compare runs the widget scenario in every mode; drop "
                 "--scenario and --mode\n");
    return 2;
  }
  if (leak_option->count() > 0)
    options.leak_threshold = std::chrono::duration<double>(leak_threshold);
  if (churn_option->count() > 0) options.churn_threshold = churn_threshold;

  // Ctrl-C or SIGTERM ends the run early, with its summary; in --compare,
  // the modes not yet run are skipped.
  std::signal(SIGINT, [](int signal) { poolscope::load::request_stop(signal); });
  std::signal(SIGTERM, [](int signal) { poolscope::load::request_stop(signal); });

  // One run, or --compare's runs in mode order.
  std::vector<poolscope::load::RunResult> results;
  try {
    if (compare) {
      for (Mode m : poolscope::load::kCompareModes) {
        if (poolscope::load::stop_requested()) break;
        options.mode = m;
        results.push_back(poolscope::load::run(options));
      }
    } else {
      results.push_back(poolscope::load::run(options));
    }
  } catch (const poolscope::Error& e) {
    std::fprintf(stderr, "poolscope-load: %s\n", e.what());
    return 1;
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "poolscope-load: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "poolscope-load: setting up %s failed: %s\n",
                 poolscope::redact_url(options.url).c_str(), e.what());
    return 1;
  }

  for (const auto& r : results) {
    if (!r.stats_json.empty()) std::fprintf(stderr, "%s\n", r.stats_json.c_str());
  }
  // With --json - the JSON owns stdout, so the tables go to stderr.
  std::FILE* const table = json_path == "-" ? stderr : stdout;
  for (const auto& r : results) poolscope::load::print_summary(table, r);
  if (compare) poolscope::load::print_comparison(table, results);
  std::uint64_t stale = 0, errors = 0, violations = 0;
  std::string first_error;
  for (const auto& r : results) {
    stale += r.stale_reads;
    errors += r.errors;
    violations += r.invariant_violations.size();
    if (first_error.empty()) first_error = r.first_error;
  }
  if (!json_path.empty()) {
    const std::string text = (compare ? poolscope::load::comparison_json(results)
                                      : poolscope::load::to_json(results.front()))
                                 .dump(2) +
                             "\n";
    if (json_path == "-") {
      std::fwrite(text.data(), 1, text.size(), stdout);
    } else {
      std::ofstream out(json_path);
      out << text;
      if (!out) {
        std::fprintf(stderr, "poolscope-load: cannot write %s\n", json_path.c_str());
        return 1;
      }
    }
  }
  if (stale > 0) {
    std::fprintf(stderr, "poolscope-load: %llu reads were older than the last committed save\n",
                 static_cast<unsigned long long>(stale));
    return 1;
  }
  if (violations > 0) {
    std::fprintf(stderr, "poolscope-load: the pool's invariants were violated (see the summary)\n");
    return 1;
  }
  if (errors > 0) {
    std::fprintf(stderr, "poolscope-load: %llu renders failed; first error: %s\n",
                 static_cast<unsigned long long>(errors), first_error.c_str());
    return 1;
  }
  if (compare && poolscope::load::is_partial(results)) {
    std::fprintf(stderr, "poolscope-load: interrupted; the comparison is partial\n");
    const int signal = poolscope::load::stop_signal();
    return signal > 0 ? 128 + signal : 130;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return run(argc, argv); }
