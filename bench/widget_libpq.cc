// poolscope-widget-libpq: the widget's floor. poolscope-load's dashboard
// render (the open transactions' accounts in order, three settings reads
// each) on libpq alone: every thread has a connection of its own, opened
// before the clock starts, the settings query is prepared once on it and
// each read is one PQexecPrepared, with no pool, no SOCI and no JVM. Every
// widget that sends a read as one round trip does at least this much work,
// so this is how fast a pool's connection-per-read widget could be if the
// pool and the client library cost nothing: scripts/bench.sh runs it beside
// poolscope-load --mode pool and HikariCP, and the report shows their
// ratios to it.
//
//   poolscope-widget-libpq --threads 8 --seconds 5 [--warmup 1]
//
// The server comes from libpq's environment (PGHOST, PGPORT, PGDATABASE,
// PGUSER, PGPASSWORD), as bench/hikari/ takes it, never the command line.
// One run prints one JSON object with the fields poolscope-load's --json and
// HikariBench's widget print.

#include <libpq-fe.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kSettingQuery =
    "SELECT setting_value FROM account_settings WHERE account_id = $1 AND setting_key = $2";
constexpr const char* kKeys[] = {"api_key", "api_secret", "paper_account"};

struct ConnectionDeleter {
  void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
using Connection = std::unique_ptr<PGconn, ConnectionDeleter>;

struct ResultDeleter {
  void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

// libpq's own error text names the host and port, never the password.
[[noreturn]] void fail(const std::string& what, PGconn* c) {
  std::string message = PQerrorMessage(c);
  while (!message.empty() && message.back() == '\n') message.pop_back();
  throw std::runtime_error(what + ": " + message);
}

Connection connect() {
  Connection c(PQconnectdb("sslmode=disable"));  // as poolscope-load's URL in scripts/bench.sh
  if (PQstatus(c.get()) != CONNECTION_OK) fail("connect", c.get());
  return c;
}

std::vector<std::string> open_accounts(PGconn* c) {
  const Result r(
      PQexec(c, "SELECT account_id FROM transactions WHERE status = 'OPEN' ORDER BY id"));
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) fail("open transactions", c);
  std::vector<std::string> ids;
  for (int row = 0; row < PQntuples(r.get()); ++row) ids.emplace_back(PQgetvalue(r.get(), row, 0));
  if (ids.empty()) throw std::runtime_error("no open transactions: seed with poolscope-load first");
  return ids;
}

std::string read_setting(PGconn* c, const std::string& account, const char* key) {
  const char* values[] = {account.c_str(), key};
  const Result r(PQexecPrepared(c, "setting", 2, values, nullptr, nullptr, 0));
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) fail("settings read", c);
  if (PQntuples(r.get()) != 1) {
    throw std::runtime_error("account " + account + " has no setting '" + key + "'");
  }
  return std::string(PQgetvalue(r.get(), 0, 0),
                     static_cast<std::size_t>(PQgetlength(r.get(), 0, 0)));
}

struct alignas(64) PerThread {
  std::vector<double> renders_s;  // the measured renders' latencies
  std::string error;
};

double quantile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  const auto rank =
      std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(rank), v.end());
  return v[rank];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"poolscope-widget-libpq: the widget on libpq alone, a connection per thread"};
  int threads = 8;
  double seconds = 5, warmup = 1;
  app.add_option("--threads", threads, "Threads, each with a connection")
      ->check(CLI::Range(1, 256));
  app.add_option("--seconds", seconds, "How long to measure")->check(CLI::Range(0.1, 3600.0));
  app.add_option("--warmup", warmup, "Renders before measuring, seconds")
      ->check(CLI::Range(0.0, 600.0));
  CLI11_PARSE(app, argc, argv);

  try {
    const std::vector<std::string> accounts = open_accounts(connect().get());
    std::vector<Connection> connections;
    for (int t = 0; t < threads; ++t) {
      connections.push_back(connect());
      const Result prepared(
          PQprepare(connections.back().get(), "setting", kSettingQuery, 2, nullptr));
      if (PQresultStatus(prepared.get()) != PGRES_COMMAND_OK)
        fail("prepare", connections.back().get());
    }

    // 0: warming up, 1: measuring, 2: stop. A render counts when it started
    // while measuring.
    std::atomic<int> phase{0};
    std::vector<PerThread> results(static_cast<std::size_t>(threads));
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        PGconn* c = connections[static_cast<std::size_t>(t)].get();
        PerThread& mine = results[static_cast<std::size_t>(t)];
        try {
          for (int now = phase.load(); now != 2; now = phase.load(std::memory_order_relaxed)) {
            const auto start = Clock::now();
            int paper = 0;
            for (const std::string& account : accounts) {
              const std::string api_key = read_setting(c, account, kKeys[0]);
              const std::string api_secret = read_setting(c, account, kKeys[1]);
              if (read_setting(c, account, kKeys[2]) == "true") ++paper;
              if (api_key.empty() || api_secret.empty()) throw std::runtime_error("empty setting");
            }
            if (paper > static_cast<int>(accounts.size())) throw std::logic_error("unreachable");
            if (now == 1) {
              mine.renders_s.push_back(std::chrono::duration<double>(Clock::now() - start).count());
            }
          }
        } catch (const std::exception& e) {
          mine.error = e.what();
          phase = 2;
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(warmup));
    int warming = 0;
    phase.compare_exchange_strong(warming, 1);
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    phase = 2;
    for (std::thread& w : workers) w.join();

    std::vector<double> all;
    for (PerThread& r : results) {
      if (!r.error.empty()) throw std::runtime_error(r.error);
      all.insert(all.end(), r.renders_s.begin(), r.renders_s.end());
    }
    const double p50 = quantile(all, 0.5), p99 = quantile(all, 0.99);
    std::printf(
        "{\"impl\": \"libpq\", \"mode\": \"connection-per-thread\", \"threads\": %d, "
        "\"pool_size\": %d, \"duration_s\": %.2f, \"warmup_s\": %.1f, \"renders\": %zu, "
        "\"renders_per_s\": %.2f, \"settings_reads_per_render\": %zu, "
        "\"render_latency_p50_s\": %.6g, \"render_latency_p99_s\": %.6g}\n",
        threads, threads, seconds, warmup, all.size(), static_cast<double>(all.size()) / seconds,
        accounts.size() * 3, p50, p99);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "poolscope-widget-libpq: %s\n", e.what());
    return 1;
  }
  return 0;
}
