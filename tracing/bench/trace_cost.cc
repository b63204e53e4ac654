// poolscope-trace-cost: what a Tracer adds to one acquire() + release, in
// instructions, on a warm SQLite pool at one thread.
//
//   valgrind --tool=callgrind --toggle-collect='*run_cycles*'
//       poolscope-trace-cost untraced|traced|stacks [cycles]
//
// callgrind's "Collected" instruction count divided by the cycles is the
// cost of one cycle; traced minus untraced is what tracing adds. A warm-up
// loop outside run_cycles() first fills every cache and table, so the
// measured cycles are all steady state. One thread by design: the
// shared-nothing cost of tracing is measured, not contention.

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "poolscope/pool/pool.h"
#include "poolscope/tracing/tracer.h"

namespace {

// The measured loop: what callgrind's --toggle-collect selects.
[[gnu::noinline]] void run_cycles(poolscope::Pool& pool, long cycles) {
  for (long i = 0; i < cycles; ++i) {
    poolscope::Lease lease = pool.acquire();
    asm volatile("" : : "r"(&*lease) : "memory");
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string_view mode = argc > 1 ? argv[1] : "traced";
  const long cycles = argc > 2 ? std::atol(argv[2]) : 100'000;
  if ((mode != "untraced" && mode != "traced" && mode != "stacks") || cycles <= 0) {
    std::fprintf(stderr, "usage: poolscope-trace-cost untraced|traced|stacks [cycles]\n");
    return 2;
  }
  const std::filesystem::path db = std::filesystem::temp_directory_path() /
                                   ("poolscope-trace-cost-" + std::to_string(::getpid()) + ".db");
  int status = 0;
  {
    poolscope::Pool pool({.url = "sqlite://" + db.string(),
                          .name = "cost",
                          .pool_size = 1,
                          .max_overflow = 0,
                          .min_idle = 1});
    std::optional<poolscope::tracing::Tracer> tracer;
    if (mode != "untraced") {
      poolscope::tracing::TracerConfig config;
      config.logger =
          std::make_shared<spdlog::logger>("cost", std::make_shared<spdlog::sinks::null_sink_mt>());
      config.capture_stacks = mode == "stacks";
      tracer.emplace(pool, config);
    }
    for (int i = 0; i < 1000; ++i) {  // warm-up, not collected
      poolscope::Lease lease = pool.acquire();
    }
    run_cycles(pool, cycles);
    std::printf("%s: %ld cycles\n", std::string(mode).c_str(), cycles);
    if (pool.stats().acquires != static_cast<std::uint64_t>(cycles + 1000)) status = 1;
  }
  std::filesystem::remove(db);
  return status;
}
