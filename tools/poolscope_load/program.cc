#include "program.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <stdexcept>

#include "log_sink.h"
#include "notices.h"
#include "poolscope/pool/pool.h"
#include "report.h"

namespace poolscope::load {

void prepare_database(const RunOptions& options) {
  PoolConfig config;
  config.url = options.url;
  config.name = "load-setup";
  config.pool_size = 1;
  config.max_overflow = 0;
  config.checkout_timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(options.checkout_timeout);
  config.transaction_pooler = options.transaction_pooler;
  Pool pool(config);
  const Subscription notices =
      pool.add_observer(std::make_shared<NoticeLog>(console_logger(options.log_tag)));
  // The seed opens the first connection: give it longer than a tiny
  // --checkout-timeout, which is for the run, not for connecting.
  std::optional<Lease> sql = pool.try_acquire(
      std::max<std::chrono::milliseconds>(config.checkout_timeout, std::chrono::seconds(30)));
  if (!sql) throw std::runtime_error("no connection for the seed within 30 s");
  seed(**sql, pool.backend());
}

ProgramOutcome run_single(const ProgramOptions& options, std::FILE* tables) {
  const RunResult result = run(options.run);
  if (!result.stats_json.empty()) std::fprintf(stderr, "%s\n", result.stats_json.c_str());
  print_summary(tables, result);
  ProgramOutcome outcome;
  outcome.json = to_json(result);
  outcome.failures = failures_of(result);
  outcome.interrupted = result.interrupted;
  if (result.interrupted) outcome.interrupted_note = "interrupted before the duration was up";
  return outcome;
}

}  // namespace poolscope::load
