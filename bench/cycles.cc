// poolscope-cycles: a fixed number of acquire + release cycles on one
// thread, to be counted by callgrind, the stable measure on a noisy machine:
// run it twice with different --cycles and divide the difference in
// instructions by the difference in cycles (scripts/bench.sh does), so setup
// and teardown cancel out.
//
//   valgrind --tool=callgrind poolscope-cycles --impl traced --cycles 20000

#include <soci/soci.h>
#include <soci/sqlite3/soci-sqlite3.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <memory>
#include <string>

#include "poolscope/pool/pool.h"
#include "poolscope/tracing/tracer.h"

int main(int argc, char** argv) {
  CLI::App app{"poolscope-cycles: acquire + release cycles for callgrind"};
  std::string impl = "poolscope";
  long cycles = 10000;
  app.add_option("--impl", impl, "poolscope, traced, nested or soci")
      ->check(CLI::IsMember({"poolscope", "traced", "nested", "soci"}));
  app.add_option("--cycles", cycles, "Cycles")->check(CLI::Range(1L, 100'000'000L));
  CLI11_PARSE(app, argc, argv);

  const std::string db = (std::filesystem::temp_directory_path() /
                          ("poolscope-cycles-" + std::to_string(getpid()) + ".db"))
                             .string();
  if (impl == "soci") {
    soci::connection_pool pool(4);
    for (int i = 0; i < 4; ++i)
      pool.at(static_cast<std::size_t>(i)).open(soci::sqlite3, "db=" + db);
    for (long i = 0; i < cycles; ++i) soci::session sql(pool);
  } else {
    poolscope::PoolConfig config;
    config.url = "sqlite://" + db;
    config.pool_size = 4;
    config.max_overflow = 0;
    config.min_idle = 4;
    poolscope::Pool pool(config);
    std::unique_ptr<poolscope::tracing::Tracer> tracer;
    if (impl == "traced") {
      poolscope::tracing::TracerConfig tc;
      tc.logger = std::make_shared<spdlog::logger>("cycles",
                                                   std::make_shared<spdlog::sinks::null_sink_mt>());
      tracer = std::make_unique<poolscope::tracing::Tracer>(pool, tc);
    }
    if (impl == "nested") {
      poolscope::Lease outer = pool.acquire();
      for (long i = 0; i < cycles; ++i) poolscope::Lease nested = pool.acquire();
    } else {
      for (long i = 0; i < cycles; ++i) poolscope::Lease lease = pool.acquire();
    }
  }
  std::filesystem::remove(db);
  return 0;
}
