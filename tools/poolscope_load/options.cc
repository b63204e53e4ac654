#include "options.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>

#include "poolscope/pool/url.h"
#include "redis_setup.h"

#ifndef POOLSCOPE_VERSION
#define POOLSCOPE_VERSION "unknown"
#endif

namespace poolscope::load {
namespace {

// Longer than any run, short enough that no conversion to milliseconds or
// nanoseconds overflows.
constexpr double kMaxSeconds = 1e6;

// Flag values as typed, before they become RunOptions.
struct Flags {
  std::string mode = "pool";
  std::string scenario = "widget";
  double duration = 0;
  double checkout_timeout = 0;
  double leak_threshold = 0;
  double churn_threshold = 0;
  double progress_every = 0;
  double chaos_kill_every = 0;
  double chaos_restart_every = 0;
  double stale_window = 0;
  bool no_progress = false;
  CLI::Option* leak_option = nullptr;
  CLI::Option* churn_option = nullptr;
};

std::optional<double> to_number(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || errno != 0 || !std::isfinite(v)) return std::nullopt;
  return v;
}

// Seconds in (0, kMaxSeconds], or [0, kMaxSeconds] when zero means "none".
CLI::Validator seconds(bool zero_allowed) {
  const std::string range = zero_allowed ? "from 0 to 1000000" : "greater than 0, at most 1000000";
  return CLI::Validator(
      [zero_allowed, range](std::string& text) -> std::string {
        const std::optional<double> v = to_number(text);
        if (!v || *v < 0 || (*v == 0 && !zero_allowed) || *v > kMaxSeconds) {
          return "expected a number of seconds " + range + " (got '" + text + "')";
        }
        return {};
      },
      "SECONDS", "seconds");
}

CLI::Validator whole(long long low, long long high) {
  return CLI::Validator(
      [low, high](std::string& text) -> std::string {
        long long v = 0;
        const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (error != std::errc() || end != text.data() + text.size() || v < low || v > high) {
          return "expected a whole number from " + std::to_string(low) + " to " +
                 std::to_string(high) + " (got '" + text + "')";
        }
        return {};
      },
      "N", "whole number");
}

CLI::Validator rate() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const std::optional<double> v = to_number(text);
        if (!v || *v < 0) return "expected acquires per second, 0 or more (got '" + text + "')";
        return {};
      },
      "RATE", "rate");
}

const char* const kDbHelp =
    "Database URL: sqlite:///path.db, sqlite3://db=app.db, postgresql://user@host:5432/db. "
    "Default: $DATABASE_URL if set, else sqlite://poolscope-demo.db. A password in this flag "
    "is visible to every local user (ps, /proc/<pid>/cmdline): put the URL in DATABASE_URL "
    "instead, or leave the password out and let libpq read PGPASSWORD or PGPASSFILE "
    "(default ~/.pgpass)";

void add_run_flags(CLI::App& app, RunOptions& o, Flags& f) {
  app.add_option("--db", o.url, kDbHelp)->envname("DATABASE_URL")->capture_default_str();
  app.add_option("--mode", f.mode,
                 "naive: a new connection per settings read; pool: a pooled lease per read; "
                 "reuse: one lease per render, nested reads share it; cached: accounts and "
                 "settings from poolscope's caches")
      ->check(CLI::IsMember({"naive", "pool", "reuse", "cached"}))
      ->capture_default_str();
  app.add_option("--threads", o.threads, "Worker threads rendering at once")
      ->check(whole(1, 4096))
      ->capture_default_str();
  app.add_option("--duration", f.duration, "Seconds to run")
      ->check(seconds(false))
      ->capture_default_str();
  app.add_option("--pool-size", o.pool_size, "Connections the pool keeps")
      ->check(whole(1, 10000))
      ->capture_default_str();
  app.add_option("--max-overflow", o.max_overflow, "Extra connections under load")
      ->check(whole(0, 10000))
      ->capture_default_str();
  app.add_option("--checkout-timeout", f.checkout_timeout, "Seconds an acquire may wait")
      ->check(seconds(false))
      ->capture_default_str();
  app.add_flag("--transaction-pooler", o.transaction_pooler,
               "A transaction-pooling PgBouncer sits in front of PostgreSQL: prepare no named "
               "statements, keep no session state across transactions "
               "(PoolConfig::transaction_pooler)");
  app.add_option("--statement-cache", o.statement_cache_size,
                 "Statements kept prepared per connection for the pooled reads; 0 runs each "
                 "read as a one-time query (PoolConfig::statement_cache_size)")
      ->check(whole(0, 100000))
      ->capture_default_str();
  app.add_option("--scenario", f.scenario,
                 "widget: render as fast as possible; leak: the same plus one export that "
                 "holds its lease past --leak-threshold; settings-write: saves mixed in, every "
                 "read checked against the last save; oversubscribe: far more threads than "
                 "connections (default 32 threads on a 4 + 2 pool), invariants checked; chaos "
                 "(PostgreSQL): backends killed every --chaos-kill-every, the server restarted "
                 "by --chaos-restart-command every --chaos-restart-every, recovery measured")
      ->check(CLI::IsMember({"widget", "leak", "settings-write", "oversubscribe", "chaos"}))
      ->capture_default_str();
  f.leak_option = app.add_option("--leak-threshold", f.leak_threshold,
                                 "Seconds a lease may be held before it is reported "
                                 "(default 2 for --scenario leak, else 30)")
                      ->check(seconds(false));
  f.churn_option = app.add_option("--churn-threshold", f.churn_threshold,
                                  "Also report a call site past this many acquires per second "
                                  "(default: off; churn is found by its shape, a loop of "
                                  "leases at one site)")
                       ->check(rate());
  app.add_option("--chaos-kill-every", f.chaos_kill_every,
                 "chaos: seconds between rounds of pg_terminate_backend on the database's "
                 "client backends (0: none)")
      ->check(seconds(true))
      ->capture_default_str();
  app.add_option("--chaos-restart-every", f.chaos_restart_every,
                 "chaos: seconds between server restarts by --chaos-restart-command")
      ->check(seconds(false))
      ->capture_default_str();
  app.add_option("--chaos-restart-command", o.chaos_restart_command,
                 "chaos: a shell command that restarts the server (e.g. 'pg_ctl -D DATA -m fast "
                 "restart'); none: no restarts");
  app.add_option("--redis", o.redis_url,
                 "Redis URL (redis://[[user]:password@]host[:port][/db] or unix:///path.sock): "
                 "the caches' shared second level, for --mode cached or --scenario "
                 "settings-write; with --processes every process uses it. A password here is "
                 "visible to other local users until it is masked at start");
  app.add_option("--redis-prefix", o.redis_prefix,
                 "First part of every Redis key (default: poolscope-load-<pid>-<random>, one "
                 "per run, so runs and databases never share values)");
  app.add_option("--stale-window", f.stale_window,
                 "settings-write: seconds after another process's save that a read may still "
                 "return the previous value; later it is a stale read")
      ->check(seconds(true))
      ->capture_default_str();
  app.add_option("--write-every", o.write_every,
                 "settings-write: each worker saves a setting every N renders")
      ->check(whole(1, 1000000))
      ->capture_default_str();
}

void add_program_flags(CLI::App& app, ProgramOptions& p, Flags& f) {
  app.add_option("--metrics", p.run.metrics_listen,
                 "Serve /metrics and /stats.json on HOST:PORT while running (e.g. "
                 "127.0.0.1:9464; with --processes, process i serves on PORT + i - 1)");
  app.add_flag("--print-stats", p.run.print_stats,
               "Print the JSON stats snapshot (pools, call sites, caches) at the end, to stderr");
  app.add_option("--json", p.json_path, "Write the figures as JSON to PATH, or - for stdout");
  app.add_flag("--no-progress", f.no_progress, "Show no progress bar and no progress lines");
  app.add_option("-P,--progress", f.progress_every,
                 "When stderr is not a terminal, print a progress line every SECONDS, as "
                 "pgbench -P does (0: none); on a terminal a bar is drawn instead")
      ->check(seconds(true))
      ->capture_default_str();
  auto* compare = app.add_flag("--compare", p.compare,
                               "Run the widget scenario in every mode (naive, pool, reuse, "
                               "cached), --repeats rounds, the modes in random order in each "
                               "round, --duration each; print each mode's spread and its "
                               "ratios against pool");
  app.add_option("--repeats", p.repeats, "--compare: rounds to run")
      ->check(whole(1, 100))
      ->needs(compare)
      ->capture_default_str();
  app.add_option("--processes", p.processes,
                 "Worker processes, each with its own pool and caches, against the same "
                 "database; one combined summary and JSON")
      ->check(whole(1, 64))
      ->capture_default_str();
  app.set_version_flag("--version", std::string("poolscope-load ") + POOLSCOPE_VERSION);
}

Scenario scenario_of(const std::string& name) {
  if (name == "leak") return Scenario::kLeak;
  if (name == "settings-write") return Scenario::kSettingsWrite;
  if (name == "oversubscribe") return Scenario::kOversubscribe;
  if (name == "chaos") return Scenario::kChaos;
  return Scenario::kWidget;
}

// --redis and --redis-prefix: a usage error's message, or empty.
std::string check_redis(const CLI::App& app, ProgramOptions& p) {
  RunOptions& o = p.run;
  if (o.redis_url.empty()) {
    if (app.count("--redis") > 0) return "--redis: expected a Redis URL (got an empty one)";
    if (app.count("--redis-prefix") > 0) return "--redis-prefix needs --redis";
    return {};
  }
  if (const std::string problem = redis_url_problem(o.redis_url); !problem.empty()) {
    return "--redis: " + problem;
  }
  if (o.mode != Mode::kCached && o.scenario != Scenario::kSettingsWrite) {
    return "--redis puts Redis under the caches: use it with --mode cached or --scenario "
           "settings-write (mode " +
           std::string(to_string(o.mode)) + " reads no cache)";
  }
  if (p.compare) return "--compare runs every mode without Redis; drop --redis";
  if (o.redis_prefix.empty()) {
    // One per run (the processes of --processes share it, forked after this).
    o.redis_prefix = "poolscope-load-" + std::to_string(::getpid()) + "-" +
                     std::to_string(std::random_device{}() % 1000000);
  }
  return {};
}

// Turns the flags into options; a usage error's message, or empty.
std::string finish(const CLI::App& app, ProgramOptions& p, Flags& f) {
  RunOptions& o = p.run;
  o.mode = *parse_mode(f.mode);
  o.scenario = scenario_of(f.scenario);
  if (o.scenario == Scenario::kOversubscribe) {
    // Far more threads than connections, unless told otherwise.
    if (app.count("--threads") == 0) o.threads = 32;
    if (app.count("--pool-size") == 0) o.pool_size = 4;
    if (app.count("--max-overflow") == 0) o.max_overflow = 2;
    if (app.count("--checkout-timeout") == 0) f.checkout_timeout = 5;
  }
  o.duration = std::chrono::duration<double>(f.duration);
  o.checkout_timeout = std::chrono::duration<double>(f.checkout_timeout);
  o.progress = !f.no_progress;
  o.progress_interval = std::chrono::duration<double>(f.progress_every);
  o.chaos_kill_every = std::chrono::duration<double>(f.chaos_kill_every);
  o.chaos_restart_every = std::chrono::duration<double>(f.chaos_restart_every);
  if (f.leak_option->count() > 0)
    o.leak_threshold = std::chrono::duration<double>(f.leak_threshold);
  if (f.churn_option->count() > 0) o.churn_threshold = f.churn_threshold;
  o.stale_window = std::chrono::duration<double>(f.stale_window);
  if (const std::string redis = check_redis(app, p); !redis.empty()) return redis;
  if (p.compare && (o.scenario != Scenario::kWidget || app.count("--mode") > 0)) {
    return "--compare runs the widget scenario in every mode; drop --scenario and --mode";
  }
  if (p.compare && p.processes > 1) return "--compare runs in one process; drop --processes";
  if (o.scenario == Scenario::kLeak && o.mode == Mode::kNaive) {
    return "the leak scenario needs a pool: use --mode pool or --mode reuse";
  }
  const bool postgresql = o.url.rfind("postgres", 0) == 0;  // postgresql:// or postgres://
  if (o.scenario == Scenario::kChaos && !postgresql) {
    return "the chaos scenario needs PostgreSQL (it kills backends and restarts the server)";
  }
  const bool chaos_flags = app.count("--chaos-kill-every") + app.count("--chaos-restart-every") +
                               app.count("--chaos-restart-command") >
                           0;
  if (chaos_flags && o.scenario != Scenario::kChaos) return "--chaos-* flags need --scenario chaos";
  if (o.scenario == Scenario::kChaos && p.processes > 1) {
    return "the chaos scenario runs in one process (each would kill and restart): drop --processes";
  }
  return {};
}

// The argv index of flag's URL (flag is "--db" or "--redis"), or -1.
int url_argument(int argc, char** argv, const char* flag) {
  const std::size_t n = std::strlen(flag);
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], flag) == 0 && i + 1 < argc) return i + 1;
    if (std::strncmp(argv[i], flag, n) == 0 && argv[i][n] == '=') return i;
  }
  return -1;
}

// Overwrites with '*' what redacted hides of argv[i] (the password or, with
// several, the span from the first to the last).
void mask_argument(char* argument, const std::string& redacted) {
  const std::string given = argument;
  std::size_t prefix = 0;
  while (prefix < given.size() && prefix < redacted.size() && given[prefix] == redacted[prefix]) {
    ++prefix;
  }
  std::size_t suffix = 0;
  while (suffix < given.size() - prefix && suffix < redacted.size() - prefix &&
         given[given.size() - 1 - suffix] == redacted[redacted.size() - 1 - suffix]) {
    ++suffix;
  }
  for (std::size_t k = prefix; k < given.size() - suffix; ++k) argument[k] = '*';
}

}  // namespace

CommandLine parse_command_line(int argc, char** argv) {
  ProgramOptions p;
  Flags f;
  f.duration = p.run.duration.count();
  f.checkout_timeout = p.run.checkout_timeout.count();
  f.progress_every = p.run.progress_interval.count();
  f.chaos_kill_every = p.run.chaos_kill_every.count();
  f.chaos_restart_every = p.run.chaos_restart_every.count();
  f.stale_window = p.run.stale_window.count();
  CLI::App app{"poolscope-load: the dashboard-widget session-churn scenario, measured"};
  add_run_flags(app, p.run, f);
  add_program_flags(app, p, f);
  CommandLine out;
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    out.exit_status = app.exit(e) == 0 ? kExitOk : kExitUsage;
    return out;
  }
  if (const std::string error = finish(app, p, f); !error.empty()) {
    std::fprintf(stderr, "poolscope-load: %s\n", error.c_str());
    out.exit_status = kExitUsage;
    return out;
  }
  out.password_in_arguments =
      url_argument(argc, argv, "--db") >= 0 && redact_url(p.run.url) != p.run.url;
  out.redis_password_in_arguments = url_argument(argc, argv, "--redis") >= 0 &&
                                    redact_redis_url(p.run.redis_url) != p.run.redis_url;
  out.options = std::move(p);
  return out;
}

void mask_password_in_arguments(int argc, char** argv) {
  if (const int i = url_argument(argc, argv, "--db"); i >= 0) {
    mask_argument(argv[i], redact_url(argv[i]));
  }
  if (const int i = url_argument(argc, argv, "--redis"); i >= 0) {
    // "--redis=URL": the flag's own part redacts to itself.
    const std::string given = argv[i];
    const std::size_t eq = given.rfind("--redis=", 0) == 0 ? 8 : 0;
    mask_argument(argv[i], given.substr(0, eq) + redact_redis_url(given.substr(eq)));
  }
}

}  // namespace poolscope::load
