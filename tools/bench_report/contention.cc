// The contention section: checkout + return on a pool of warm connections,
// every implementation in every round, judged by the worst round with p99
// wait and fairness beside the mean.

#include <set>

#include "report.h"

namespace poolscope::bench_report {
namespace {

struct Impl {
  const char* key;
  const char* label;
};

constexpr Impl kImpls[] = {
    {"traced", "poolscope traced"},         {"poolscope", "poolscope untraced"},
    {"soci", "`soci::session(pool)`"},      {"hikaricp", "HikariCP"},
    {"sqlalchemy", "SQLAlchemy QueuePool"},
};

// Runs by implementation, thread count and round.
class Runs {
 public:
  explicit Runs(const std::vector<json>& lines) {
    for (const json& line : lines) {
      const json& r = line["result"];
      const int threads = r["threads"].get<int>();
      runs_[{r["impl"].get<std::string>(), threads}][line["round"].get<int>()] = r;
      threads_.insert(threads);
    }
  }
  const std::set<int>& thread_counts() const { return threads_; }

  Spread figure(const std::string& impl, int threads, const char* name) const {
    Spread s;
    const auto it = runs_.find({impl, threads});
    if (it == runs_.end()) return s;
    for (const auto& [round, r] : it->second) s.add(r[name].get<double>());
    return s;
  }

  // other / base per round (the same round, the same thread count).
  Spread ratio(const std::string& other, const std::string& base, int threads,
               const char* name = "ns_per_cycle") const {
    Spread s;
    const auto o = runs_.find({other, threads});
    const auto b = runs_.find({base, threads});
    if (o == runs_.end() || b == runs_.end()) return s;
    for (const auto& [round, r] : o->second) {
      const auto same = b->second.find(round);
      if (same == b->second.end()) continue;
      const double denominator = same->second[name].get<double>();
      if (denominator > 0) s.add(r[name].get<double>() / denominator);
    }
    return s;
  }

 private:
  std::map<std::pair<std::string, int>, std::map<int, json>> runs_;
  std::set<int> threads_;
};

std::string ns_text(double ns) { return fixed(ns, ns >= 100 ? 0 : 1); }
std::string fairness_text(double f) { return fixed(f, 2); }

void cost_table(std::ostream& out, const Runs& runs) {
  out << "Nanoseconds per checkout + return over all threads (wall time / cycles), median of the "
         "rounds (min - max):\n\n| implementation |";
  for (int t : runs.thread_counts()) out << " " << t << (t == 1 ? " thread" : " threads") << " |";
  out << "\n|---|";
  for (std::size_t i = 0; i < runs.thread_counts().size(); ++i) out << "---:|";
  out << "\n";
  for (const Impl& impl : kImpls) {
    out << "| " << impl.label << " |";
    for (int t : runs.thread_counts()) {
      out << " " << spread_text(runs.figure(impl.key, t, "ns_per_cycle"), ns_text) << " |";
    }
    out << "\n";
  }
}

void ratio_table(std::ostream& out, const Runs& runs) {
  out << "\nRatios, the other implementation's time over poolscope traced's in the same round "
         "(above 1: poolscope is faster), **min / median / max** over the rounds; the min is "
         "poolscope's worst round:\n\n| ratio |";
  for (int t : runs.thread_counts()) out << " " << t << " |";
  out << "\n|---|";
  for (std::size_t i = 0; i < runs.thread_counts().size(); ++i) out << "---:|";
  out << "\n";
  const std::pair<const char*, const char*> rows[] = {
      {"hikaricp", "HikariCP / poolscope traced"},
      {"soci", "`soci::session(pool)` / poolscope traced"},
      {"sqlalchemy", "SQLAlchemy / poolscope traced"},
      {"poolscope", "poolscope untraced / traced"},
  };
  for (const auto& [key, label] : rows) {
    out << "| " << label << " |";
    for (int t : runs.thread_counts()) {
      out << " " << min_median_max(runs.ratio(key, "traced", t), times) << " |";
    }
    out << "\n";
  }
}

// Oversubscribed: the mean beside what shows a convoy.
void oversubscribed_table(std::ostream& out, const Runs& runs, int threads) {
  out << "\n**" << threads << " threads on the pool**: mean cost beside the worst round, the "
      << "p99 wait in getConnection()/acquire() and fairness (fewest / most cycles of any "
         "thread; 1 is even), median of the rounds (worst round):\n\n"
      << "| implementation | ns per cycle | worst round | p50 wait | p99 wait | worst p99 wait | "
         "fairness | worst fairness |\n|---|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const Impl& impl : kImpls) {
    const Spread cost = runs.figure(impl.key, threads, "ns_per_cycle");
    if (cost.empty()) continue;
    const Spread p50 = runs.figure(impl.key, threads, "wait_p50_ns");
    const Spread p99 = runs.figure(impl.key, threads, "wait_p99_ns");
    const Spread fair = runs.figure(impl.key, threads, "fairness");
    out << "| " << impl.label << " | " << ns_text(cost.median()) << " | " << ns_text(cost.max())
        << " | " << nanos(p50.median()) << " | " << nanos(p99.median()) << " | " << nanos(p99.max())
        << " | " << fairness_text(fair.median()) << " | " << fairness_text(fair.min()) << " |\n";
  }
}

void add_goals(const Runs& runs, std::vector<Goal>& goals) {
  const int t = 16;
  const Spread vs_hikari = runs.ratio("hikaricp", "traced", t);
  goals.push_back(
      {"16 threads on 8: poolscope traced at least as fast as HikariCP, worst round",
       vs_hikari.empty() ? "n/a" : "HikariCP / traced " + min_median_max(vs_hikari, times),
       vs_hikari.empty() ? std::nullopt : std::optional<bool>(vs_hikari.min() >= 1)});
  const Spread p99 = runs.ratio("traced", "hikaricp", t, "wait_p99_ns");
  goals.push_back({"16 threads on 8: p99 wait within 10x HikariCP's, worst round",
                   p99.empty() ? "n/a" : "traced / HikariCP p99 " + min_median_max(p99, times),
                   p99.empty() ? std::nullopt : std::optional<bool>(p99.max() <= 10)});
  const Spread fair = runs.figure("traced", t, "fairness");
  goals.push_back({"16 threads on 8: fairness at least 0.5, worst round",
                   min_median_max(fair, fairness_text),
                   fair.empty() ? std::nullopt : std::optional<bool>(fair.min() >= 0.5)});
}

}  // namespace

void contention_section(std::ostream& out, const Raw& raw, std::vector<Goal>& goals) {
  if (raw.contention.empty()) return;
  const Runs runs(raw.contention);
  const json& m = raw.meta;
  out << "## Checkout + return under contention\n\n"
      << "Threads looping checkout + return on a pool of " << m.value("pool", 8)
      << " warm PostgreSQL connections (one throwaway server for all), " << m.value("seconds", 0.0)
      << " s per run, rounds: " << m.value("rounds", 0)
      << "; each round runs every implementation once per thread count, in an order "
         "rotated per round. poolscope and soci: `poolscope-contention --db URL` "
         "(`pool.acquire()` + the lease's destructor; `soci::session sql(pool)`); HikariCP: "
         "`bench/hikari/HikariBench.java` (`getConnection()` / `close()`, minimumIdle = "
         "maximumPoolSize, after a "
      << m.value("hikari_warmup_s", 0.0)
      << " s JIT warm-up of the same loop in the same JVM); SQLAlchemy: "
         "`bench/sqlalchemy/sqlalchemy_bench.py` (`QueuePool.connect()` / `close()`, pool_size "
         "8, max_overflow 0, after "
      << m.value("sqlalchemy_warmup_s", 0.0)
      << " s). No query is sent: what is measured is the pool. The wait is the checkout call's "
         "whole latency.\n\n";
  cost_table(out, runs);
  ratio_table(out, runs);
  for (int t : {16, 32}) {
    if (runs.thread_counts().count(t) != 0) oversubscribed_table(out, runs, t);
  }
  out << "\n";
  add_goals(runs, goals);
}

}  // namespace poolscope::bench_report
