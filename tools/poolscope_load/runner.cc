#include "runner.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "console.h"
#include "invariants.h"
#include "log_sink.h"
#include "notices.h"
#include "poolscope/exporters/metrics_collector.h"
#include "poolscope/exporters/metrics_server.h"
#include "progress.h"
#include "workers.h"

namespace poolscope::load {
namespace {

using Clock = std::chrono::steady_clock;
using Seconds = std::chrono::duration<double>;

// The render rate over the last second, from samples taken each tick.
class RenderRate {
 public:
  void sample(Clock::time_point now, std::uint64_t renders) {
    samples_.push_back({now, renders});
    while (samples_.size() > 1 && samples_[1].first <= now - std::chrono::seconds(1)) {
      samples_.pop_front();
    }
  }
  // Renders per second, once half a second has been seen; 0 before.
  double per_second() const {
    const double span = Seconds(samples_.back().first - samples_.front().first).count();
    if (span < 0.5) return 0;
    return static_cast<double>(samples_.back().second - samples_.front().second) / span;
  }

 private:
  std::deque<std::pair<Clock::time_point, std::uint64_t>> samples_;
};

// Set by request_stop(), possibly from a signal handler: lock-free atomics,
// relaxed because nothing else is published through them.
std::atomic<bool> g_stop_requested{false};
std::atomic<int> g_stop_signal{0};
static_assert(std::atomic<bool>::is_always_lock_free && std::atomic<int>::is_always_lock_free);

PoolConfig pool_config(const RunOptions& options) {
  PoolConfig config;
  config.url = options.url;
  config.name = "load";
  config.pool_size = options.pool_size;
  config.max_overflow = options.max_overflow;
  config.checkout_timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(options.checkout_timeout);
  config.transaction_pooler = options.transaction_pooler;
  config.statement_cache_size = options.statement_cache_size;
  return config;
}

Seconds leak_threshold_of(const RunOptions& options) {
  return options.leak_threshold.value_or(options.scenario == Scenario::kLeak ? Seconds(2.0)
                                                                             : Seconds(30.0));
}

// The leak scenario holds one lease for 1.5 leak thresholds: long enough to
// be reported, short enough to come back (and be logged) within the run.
Seconds leak_hold_of(const RunOptions& options) { return leak_threshold_of(options) * 1.5; }

Seconds duration_of(const RunOptions& options) {
  const Seconds hold = leak_hold_of(options);
  if (options.scenario == Scenario::kLeak && options.duration < hold + Seconds(0.5)) {
    return hold + Seconds(0.5);
  }
  return options.duration;
}

// Everything a run holds while its workers run, in the order it is built;
// members go in reverse, so the server and collector go before the caches
// and tracer they read, and those before the pool.
struct RunSetup {
  explicit RunSetup(const RunOptions& o);

  const RunOptions& options;
  const ConnectionUrl url;
  const std::shared_ptr<spdlog::logger> logger;
  Pool pool;
  Subscription notices;
  std::optional<tracing::Tracer> tracer;
  std::vector<Transaction> rows;
  PoolStats before;
  std::unique_ptr<CommitLog> own_log;  // when not given one by --processes
  std::unique_ptr<RunRedis> redis;
  std::unique_ptr<WidgetCaches> caches;
  std::unique_ptr<WriteLedger> ledger;
  std::shared_ptr<exporters::MetricsCollector> metrics;
  std::unique_ptr<exporters::MetricsServer> server;

 private:
  void start_tracing();
  void start_caches();
  void start_metrics();
};

RunSetup::RunSetup(const RunOptions& o)
    : options(o),
      url(ConnectionUrl::parse(o.url)),
      logger(console_logger(o.log_tag)),
      pool(pool_config(o)) {
  if (o.scenario == Scenario::kSettingsWrite && o.write_every < 1) {
    throw std::invalid_argument("--write-every must be at least 1");
  }
  notices = pool.add_observer(std::make_shared<NoticeLog>(logger));
  start_tracing();
  {
    // Setup opens the first connection: give it longer than a tiny
    // --checkout-timeout, which is for the run, not for connecting.
    std::optional<Lease> sql = pool.try_acquire(std::max<std::chrono::milliseconds>(
        pool.config().checkout_timeout, std::chrono::seconds(30)));
    if (!sql) throw std::runtime_error("no connection for the setup within 30 s");
    rows = load_open_transactions(**sql);
  }
  before = pool.stats();
  const bool writing = o.scenario == Scenario::kSettingsWrite;
  if (o.mode == Mode::kCached || writing) start_caches();
  if (writing) {
    CommitLog* log = o.commit_log;
    if (log == nullptr) log = (own_log = std::make_unique<CommitLog>()).get();
    ledger = std::make_unique<WriteLedger>(
        *log, o.process_index, o.processes,
        std::chrono::duration_cast<std::chrono::nanoseconds>(o.stale_window));
  }
  start_metrics();
}

void RunSetup::start_caches() {
  if (options.redis_url.empty()) {
    caches = std::make_unique<WidgetCaches>(pool);
    return;
  }
  redis = std::make_unique<RunRedis>(options.redis_url, options.redis_prefix, logger);
  caches = std::make_unique<WidgetCaches>(pool, redis->settings_tier());
  caches->shared_evictions = redis->attach(caches->accounts);
  const RedisFigures f = redis->figures();
  logger->info("poolscope-load: caches on the Redis tier {} (prefix {}), {}", f.url,
               options.redis_prefix, f.state);
}

void RunSetup::start_tracing() {
  if (options.mode == Mode::kNaive) return;
  tracing::TracerConfig tc;
  tc.logger = logger;
  tc.leak_threshold =
      std::chrono::duration_cast<std::chrono::milliseconds>(leak_threshold_of(options));
  tc.churn_window = std::chrono::seconds(1);
  // Churn is found by its shape; the rate option only when asked for.
  tc.churn_threshold = options.churn_threshold.value_or(0);
  tracer.emplace(pool, tc);
}

// Metrics while running: the pool, its call sites and the caches.
void RunSetup::start_metrics() {
  if (options.metrics_listen.empty() && !options.print_stats) return;
  metrics = std::make_shared<exporters::MetricsCollector>();
  metrics->add_pool(pool);
  if (tracer) metrics->add_tracer(*tracer);
  if (caches) {
    metrics->add_cache(caches->settings);
    metrics->add_cache(caches->accounts, pool.name());
  }
  if (redis) redis->add_to(*metrics, pool.name());
  if (options.metrics_listen.empty()) return;
  server = std::make_unique<exporters::MetricsServer>(
      metrics, exporters::MetricsServerConfig{.listen = options.metrics_listen});
  logger->info("poolscope-load: serving {}/metrics and {}/stats.json", server->url(),
               server->url());
}

// Shows the progress and tunes the churn threshold until the duration is up
// or a stop is requested; returns whether it was.
bool drive(RunSetup& s, const WorkerGroup& workers, Clock::time_point start, Seconds duration) {
  ProgressDisplay progress(s.options.progress, s.options.progress_interval, duration,
                           s.options.log_tag);
  RenderRate rate;
  for (;;) {
    const auto now = Clock::now();
    const Seconds elapsed = now - start;
    if (stop_requested()) return true;
    if (elapsed >= duration) return false;
    const RenderTotals totals = workers.totals();
    rate.sample(now, totals.renders);
    progress.update(elapsed.count(), totals);
    if (s.options.on_tick) s.options.on_tick(totals);
    const Seconds left = duration - elapsed;
    std::this_thread::sleep_for(std::min<Seconds>(left, std::chrono::milliseconds(100)));
  }
}

ChaosConfig chaos_config(const RunOptions& options, const RunSetup& setup) {
  ChaosConfig c;
  c.url = &setup.url;
  c.kill_every = options.chaos_kill_every;
  c.restart_every = options.chaos_restart_every;
  c.restart_command = options.chaos_restart_command;
  c.logger = setup.logger;
  return c;
}

// Ends the faults, then lets the widget run until a render that began after
// the last fault has succeeded: a run must not end on a fault it has not yet
// come back from. Waits at most a checkout timeout plus 10 s; the seconds waited.
double await_recovery(ChaosMonkey& chaos, const RunOptions& options) {
  chaos.stop();
  const auto start = Clock::now();
  const auto deadline =
      start + std::chrono::duration_cast<Clock::duration>(options.checkout_timeout + Seconds(10));
  while (!chaos.recovered() && !stop_requested() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return Seconds(Clock::now() - start).count();
}

void fill_counts(RunResult& r, const RunSetup& s, const WorkerFigures& f) {
  r.renders = f.renders;
  r.failed_timeouts = f.failed_timeouts;
  r.failed_errors = f.failed_errors;
  r.writes = f.writes;
  r.stale_reads = f.stale_reads;
  r.late_reads = f.late_reads;
  if (s.ledger) {
    r.stale_window_s = Seconds(s.options.stale_window).count();
    r.sightings = s.ledger->sightings();
  }
  if (s.own_log) {
    CommitLog::Windows w = s.own_log->windows(1);
    r.staleness_ms = std::move(w.ms);
    r.staleness_unseen = w.unseen;
  }
  r.first_error = f.first_error;
  r.render_latency = f.render_latency;
  r.acquire_samples = f.acquire_latency.count();
  r.acquire_p50_s = f.acquire_latency.quantile_seconds(0.50);
  r.acquire_p99_s = f.acquire_latency.quantile_seconds(0.99);
  const PoolStats after = s.pool.stats();
  if (s.options.mode == Mode::kNaive) {
    r.checkouts = f.naive_connections;
    r.connections_opened = f.naive_connections;
  } else {
    r.checkouts = after.acquires - s.before.acquires;
    r.reuses = after.reuses - s.before.reuses;
    r.connections_opened = after.connections_opened - s.before.connections_opened;
  }
  r.statements_prepared = after.statements_prepared - s.before.statements_prepared;
  r.statement_cache_hits = after.statement_cache_hits - s.before.statement_cache_hits;
  r.timeouts = after.timeouts - s.before.timeouts;
  r.waits = after.waits - s.before.waits;
  r.wait_total_s = Seconds(after.total_wait - s.before.total_wait).count();
  std::uint64_t accounts = 0;
  for (int id = 1; id <= kAccounts; ++id) {
    accounts += std::any_of(s.rows.begin(), s.rows.end(),
                            [id](const Transaction& t) { return t.account_id == id; });
  }
  const bool cached = s.options.mode == Mode::kCached;
  r.distinct_keys = cached ? accounts : accounts * kReadsPerAccount;
  r.database_loads = cached ? s.caches->settings.stats().loads : f.database_reads;
  if (s.redis) {
    // With Redis the settings cache's loader asks Redis first: the tier
    // counts the loads that went on to the database.
    r.redis = s.redis->figures();
    r.redis_hits = r.redis->redis_hits;
    if (cached) r.database_loads = r.redis->database_loads;
  }
  if (s.caches) {
    for (const cache::CacheStats& c : {s.caches->accounts.stats(), s.caches->settings.stats()}) {
      r.caches.push_back(c);
      r.sessions_avoided += c.sessions_avoided;
    }
  }
}

void fill_tracing(RunResult& r, const RunSetup& s) {
  if (!s.tracer) return;
  r.traced = true;
  r.sites = s.tracer->sites();
  r.folded_sites = s.tracer->folded_sites();
  r.tracer = s.tracer->stats();
  r.churn_threshold = s.tracer->churn_threshold();
  r.leak_threshold_s = leak_threshold_of(s.options).count();
}

RunResult collect(const RunSetup& s, const WorkerFigures& figures,
                  const InvariantSampler& invariants, double elapsed_s, bool interrupted) {
  RunResult r;
  r.scenario = std::string(to_string(s.options.scenario));
  r.mode = std::string(to_string(s.options.mode));
  r.backend = std::string(to_string(s.url.backend()));
  r.url = s.url.redacted();
  r.threads = s.options.threads;
  r.pool_size = s.options.pool_size;
  r.max_overflow = s.options.max_overflow;
  r.transaction_pooler = s.options.transaction_pooler;
  r.statement_cache_size = s.options.statement_cache_size;
  r.duration_s = elapsed_s;
  r.interrupted = interrupted;
  fill_counts(r, s, figures);
  r.max_open_seen = invariants.max_open();
  r.max_pending_seen = invariants.max_pending();
  r.invariants_checked = invariants.enabled();
  r.invariant_violations = invariants.violations();
  if (s.options.print_stats) r.stats_json = s.metrics->json();
  fill_tracing(r, s);
  return r;
}

}  // namespace

void request_stop(int signal) noexcept {
  if (signal != 0) g_stop_signal.store(signal, std::memory_order_relaxed);
  g_stop_requested.store(true, std::memory_order_relaxed);
}

bool stop_requested() noexcept { return g_stop_requested.load(std::memory_order_relaxed); }

int stop_signal() noexcept { return g_stop_signal.load(std::memory_order_relaxed); }

std::string_view to_string(Scenario scenario) noexcept {
  switch (scenario) {
    case Scenario::kLeak:
      return "leak";
    case Scenario::kSettingsWrite:
      return "settings-write";
    case Scenario::kOversubscribe:
      return "oversubscribe";
    case Scenario::kChaos:
      return "chaos";
    case Scenario::kWidget:
      break;
  }
  return "widget";
}

RunResult run(const RunOptions& options) {
  if (options.scenario == Scenario::kLeak && options.mode == Mode::kNaive) {
    throw std::invalid_argument("the leak scenario needs a pool: use --mode pool or --mode reuse");
  }
  RunSetup setup(options);
  if (options.scenario == Scenario::kChaos && setup.url.backend() != Backend::kPostgreSQL) {
    throw std::invalid_argument("the chaos scenario needs PostgreSQL (it kills backends)");
  }
  const Seconds duration = duration_of(options);
  if (duration > options.duration) {
    setup.logger->info(
        "poolscope-load: running {:.1f} s so the held lease passes "
        "leak_threshold and comes back",
        duration.count());
  }
  std::optional<ChaosMonkey> chaos;
  if (options.scenario == Scenario::kChaos) chaos.emplace(chaos_config(options, setup));
  WorkerContext context;
  context.options = &options;
  context.pool = &setup.pool;
  context.url = &setup.url;
  context.rows = &setup.rows;
  context.caches = setup.caches.get();
  context.ledger = setup.ledger.get();
  context.logger = setup.logger;
  context.chaos = chaos ? &*chaos : nullptr;
  context.leak_hold = leak_hold_of(options);
  const auto start = Clock::now();
  WorkerGroup workers(context);
  // Naive mode bypasses the pool: nothing to check there.
  InvariantSampler invariants(setup.pool, workers.acquirers(), options.mode != Mode::kNaive);
  const bool interrupted = drive(setup, workers, start, duration);
  const double recovery_wait = chaos ? await_recovery(*chaos, options) : 0;
  workers.stop();
  const double elapsed = Seconds(Clock::now() - start).count();
  invariants.stop_and_check_final();
  RunResult result = collect(setup, workers.figures(), invariants, elapsed, interrupted);
  if (chaos) {
    result.chaos = chaos->figures();
    result.chaos_recovery_wait_s = recovery_wait;
  }
  return result;
}

}  // namespace poolscope::load
