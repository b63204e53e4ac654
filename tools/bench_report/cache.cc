// The cache-hit section (poolscope-bench's benchmarks and the plain loop of
// poolscope-cache-loop) and the callgrind section (instructions per
// acquire + release and per hit).

#include "report.h"

namespace poolscope::bench_report {
namespace {

// Google Benchmark's repetitions: real time in ns by run name and repetition.
class BenchRuns {
 public:
  explicit BenchRuns(const json& doc) {
    if (!doc.contains("benchmarks")) return;
    for (const json& b : doc["benchmarks"]) {
      if (b.value("run_type", "") != "iteration") continue;
      const std::string unit = b.value("time_unit", "ns");
      const double scale = unit == "s" ? 1e9 : unit == "ms" ? 1e6 : unit == "us" ? 1e3 : 1;
      runs_[b["run_name"].get<std::string>()][b.value("repetition_index", 0)] =
          b["real_time"].get<double>() * scale;
    }
  }
  Spread figure(const std::string& name) const {
    Spread s;
    const auto it = runs_.find(name);
    if (it != runs_.end()) {
      for (const auto& [rep, ns] : it->second) s.add(ns);
    }
    return s;
  }
  // other / base, repetition by repetition.
  Spread ratio(const std::string& other, const std::string& base) const {
    Spread s;
    const auto o = runs_.find(other);
    const auto b = runs_.find(base);
    if (o == runs_.end() || b == runs_.end()) return s;
    for (const auto& [rep, ns] : o->second) {
      const auto same = b->second.find(rep);
      if (same != b->second.end() && same->second > 0) s.add(ns / same->second);
    }
    return s;
  }
  bool empty() const { return runs_.empty(); }

 private:
  std::map<std::string, std::map<int, double>> runs_;
};

// poolscope-cache-loop's runs: ns per hit by contender, threads and round.
class LoopRuns {
 public:
  explicit LoopRuns(const std::vector<json>& lines) {
    for (const json& line : lines) {
      const json& r = line["result"];
      runs_[{r["impl"].get<std::string>(), r["threads"].get<int>()}][line["round"].get<int>()] =
          r["ns_per_hit"].get<double>();
    }
  }
  Spread figure(const std::string& impl, int threads) const {
    Spread s;
    const auto it = runs_.find({impl, threads});
    if (it != runs_.end()) {
      for (const auto& [round, ns] : it->second) s.add(ns);
    }
    return s;
  }
  Spread ratio(const std::string& other, const std::string& base, int threads) const {
    Spread s;
    const auto o = runs_.find({other, threads});
    const auto b = runs_.find({base, threads});
    if (o == runs_.end() || b == runs_.end()) return s;
    for (const auto& [round, ns] : o->second) {
      const auto same = b->second.find(round);
      if (same != b->second.end() && same->second > 0) s.add(ns / same->second);
    }
    return s;
  }

 private:
  std::map<std::pair<std::string, int>, std::map<int, double>> runs_;
};

std::string ns_text(double ns) { return fixed(ns, ns >= 100 ? 0 : 1); }

std::string gbench_name(const std::string& family, int threads) {
  if (family.find("HitLoop") != std::string::npos) {
    return family + "/threads:" + std::to_string(threads) + "/iterations:1/manual_time";
  }
  return family + "/real_time/threads:" + std::to_string(threads);
}

void cache_goals(const BenchRuns& bench, const LoopRuns& loop, std::vector<Goal>& goals) {
  for (int t : {1, 2}) {
    const double need = t == 1 ? 1.0 : 2.0;
    const std::string rule = t == 1 ? "at least as fast as" : "at least 2x faster than";
    const Spread b =
        bench.ratio(gbench_name("BM_MutexUnorderedMapHit", t), gbench_name("BM_TtlCacheHit", t));
    goals.push_back({"`TtlCache` hit " + rule + " the mutex map, " + std::to_string(t) +
                         (t == 1 ? " thread" : " threads") + ", poolscope-bench, worst round",
                     b.empty() ? "n/a" : "mutex / TtlCache " + min_median_max(b, times),
                     b.empty() ? std::nullopt : std::optional<bool>(b.min() >= need)});
    const Spread l = loop.ratio("mutex", "ttl", t);
    goals.push_back({"`TtlCache` hit " + rule + " the mutex map, " + std::to_string(t) +
                         (t == 1 ? " thread" : " threads") + ", plain loop, worst round",
                     l.empty() ? "n/a" : "mutex / TtlCache " + min_median_max(l, times),
                     l.empty() ? std::nullopt : std::optional<bool>(l.min() >= need)});
  }
}

}  // namespace

void cache_section(std::ostream& out, const Raw& raw, std::vector<Goal>& goals) {
  const BenchRuns bench(raw.bench);
  const LoopRuns loop(raw.cache_loop);
  if (bench.empty() && raw.cache_loop.empty()) return;
  out << "## Cache hits\n\n"
      << "Nanoseconds per hit, per thread (a hit's share of a thread's wall time), median "
         "(min - max) over the rounds. 1,000 string keys of 30 bytes held by the caller in a "
         "`std::vector<std::string>`, values `std::shared_ptr<const std::string>` copied out per "
         "hit, each thread walking the keys from its own starting point; the default clock. "
         "Three harnesses: Google Benchmark's loop (`BM_<X>Hit`, one hit per iteration, "
         "`UseRealTime`: per-thread time is the figure x threads), poolscope-bench's plain loop "
         "(`BM_<X>HitLoop`) and `poolscope-cache-loop` (a program of its own, one run per "
         "contender and round, interleaved with the other cases).\n\n"
      << "| harness | contender | 1 thread | 2 threads |\n|---|---|---:|---:|\n";
  const std::pair<const char*, const char*> contenders[] = {
      {"TtlCache", "`TtlCache`"},
      {"MutexUnorderedMap", "`std::mutex` + `std::unordered_map`"},
      {"TbbConcurrentHashMap", "TBB `concurrent_hash_map`"},
      {"SettingsCache", "`SettingsCache::get<int>`"}};
  for (const char* shape : {"Hit", "HitLoop"}) {
    for (const auto& [family, label] : contenders) {
      const std::string name = std::string("BM_") + family + shape;
      const Spread one = bench.figure(gbench_name(name, 1));
      if (one.empty()) continue;
      out << "| poolscope-bench `" << name << "` | " << label << " | " << spread_text(one, ns_text)
          << " | " << spread_text(bench.figure(gbench_name(name, 2)), ns_text) << " |\n";
    }
  }
  const std::pair<const char*, const char*> loops[] = {
      {"ttl", "`TtlCache`"},
      {"mutex", "`std::mutex` + `std::unordered_map`"},
      {"tbb", "TBB `concurrent_hash_map`"}};
  for (const auto& [impl, label] : loops) {
    const Spread one = loop.figure(impl, 1);
    if (one.empty()) continue;
    out << "| poolscope-cache-loop | " << label << " | " << spread_text(one, ns_text) << " | "
        << spread_text(loop.figure(impl, 2), ns_text) << " |\n";
  }
  out << "\nRatios over `TtlCache` in the same round (above 1: `TtlCache` is faster), min / "
         "median / max:\n\n| ratio | harness | 1 thread | 2 threads |\n|---|---|---:|---:|\n";
  for (const char* other : {"MutexUnorderedMap", "TbbConcurrentHashMap"}) {
    for (const char* shape : {"Hit", "HitLoop"}) {
      const std::string o = std::string("BM_") + other + shape;
      const std::string b = std::string("BM_TtlCache") + shape;
      out << "| " << other << " / TtlCache | poolscope-bench `" << shape << "` | "
          << min_median_max(bench.ratio(gbench_name(o, 1), gbench_name(b, 1)), times) << " | "
          << min_median_max(bench.ratio(gbench_name(o, 2), gbench_name(b, 2)), times) << " |\n";
    }
    const std::string key = std::string(other) == "MutexUnorderedMap" ? "mutex" : "tbb";
    out << "| " << other << " / TtlCache | poolscope-cache-loop | "
        << min_median_max(loop.ratio(key, "ttl", 1), times) << " | "
        << min_median_max(loop.ratio(key, "ttl", 2), times) << " |\n";
  }
  out << "\n";
  cache_goals(bench, loop, goals);
}

void callgrind_section(std::ostream& out, const Raw& raw, std::vector<Goal>& goals) {
  if (raw.callgrind.empty()) return;
  std::map<std::string, double> per;
  for (const json& c : raw.callgrind) {
    const double n = c["n2"].get<double>() - c["n1"].get<double>();
    if (n > 0) per[c["case"]] = (c["ir2"].get<double>() - c["ir1"].get<double>()) / n;
  }
  auto at = [&](const char* name) -> std::optional<double> {
    const auto it = per.find(name);
    return it == per.end() ? std::nullopt : std::optional<double>(it->second);
  };
  out << "## Instructions (callgrind)\n\n"
      << "Instructions per operation on one thread, from two runs of different lengths under "
         "`valgrind --tool=callgrind` (the difference in instructions over the difference in "
         "operations, so startup and teardown cancel): `poolscope-cycles` on SQLite for "
         "acquire + release, `poolscope-cache-loop --threads 1` for a hit (including the "
         "loop's own few instructions and the virtual call to the contender).\n\n"
      << "| operation | instructions |\n|---|---:|\n";
  const std::pair<const char*, const char*> rows[] = {
      {"poolscope", "poolscope acquire + release, untraced"},
      {"traced", "poolscope acquire + release, traced"},
      {"nested", "poolscope nested acquire + release (a reuse of the thread's lease)"},
      {"soci", "`soci::session sql(pool)`"},
      {"cache-ttl", "`TtlCache` hit"},
      {"cache-mutex", "`std::mutex` + `std::unordered_map` hit"},
      {"cache-tbb", "TBB `concurrent_hash_map` hit"}};
  for (const auto& [key, label] : rows) {
    if (const auto v = at(key)) out << "| " << label << " | " << fixed(*v, 0) << " |\n";
  }
  const auto plain = at("poolscope"), traced = at("traced"), soci = at("soci");
  std::string overhead = "n/a";
  if (plain && traced && *plain > 0) {
    // Appended, not "literal" + string: GCC 12's -Wrestrict misreads that at -O3.
    overhead = "+";
    overhead += fixed(*traced - *plain, 0);
    overhead += " instructions, +";
    overhead += fixed((*traced / *plain - 1) * 100, 1);
    overhead += "%";
  }
  out << "\nTracing's cost: " << overhead << " per cycle.";
  if (soci && traced) out << " `soci::session(pool)` / traced: " << times(*soci / *traced) << ".";
  out << "\n\n";
  goals.push_back({"tracing under 15% more instructions per cycle at 1 thread", overhead,
                   plain && traced ? std::optional<bool>(*traced / *plain < 1.15) : std::nullopt});
}

}  // namespace poolscope::bench_report
