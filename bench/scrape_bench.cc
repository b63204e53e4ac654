// What one Prometheus scrape costs: collecting every family and serializing
// it as text, with 1,000 call sites registered (plus "other").

#include <benchmark/benchmark.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>
#include <unistd.h>

#include <filesystem>
#include <memory>

#include "poolscope/exporters/metrics_collector.h"

namespace poolscope::bench {
extern void (*const kSites[])(Pool&);
extern const int kSiteCount;
}  // namespace poolscope::bench

namespace {

void BM_MetricsScrape1000Sites(benchmark::State& state) {
  const std::string db = (std::filesystem::temp_directory_path() /
                          ("poolscope-scrape-" + std::to_string(::getpid()) + ".db"))
                             .string();
  poolscope::Pool pool({.url = "sqlite://" + db, .name = "scraped", .pool_size = 4});
  poolscope::tracing::TracerConfig tc;
  tc.logger =
      std::make_shared<spdlog::logger>("scrape", std::make_shared<spdlog::sinks::null_sink_mt>());
  tc.max_sites = 1000;
  poolscope::tracing::Tracer tracer(pool, tc);
  poolscope::cache::TtlCache<std::string, int> cache({.name = "configs"});
  poolscope::exporters::MetricsCollector metrics;
  metrics.add_pool(pool);
  metrics.add_tracer(tracer);
  metrics.add_cache(cache);
  for (int i = 0; i < poolscope::bench::kSiteCount; ++i) poolscope::bench::kSites[i](pool);
  std::size_t bytes = 0;
  for (auto _ : state) {
    const std::string text = metrics.text();
    bytes = text.size();
    benchmark::DoNotOptimize(text.data());
  }
  state.counters["sites"] = static_cast<double>(tracer.sites().size() - 1);
  state.counters["bytes"] = static_cast<double>(bytes);
  std::filesystem::remove(db);
}

BENCHMARK(BM_MetricsScrape1000Sites)->Unit(benchmark::kMillisecond);

}  // namespace
