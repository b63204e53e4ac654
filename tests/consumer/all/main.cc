// Uses every component the way the README shows: a pool, its tracer, a cache
// and the metrics served over HTTP.
#include <poolscope/exporters/metrics_server.h>
#include <poolscope/tracing/tracer.h>
#include <soci/soci.h>

#include <cstdio>
#include <memory>
#include <string>

int main() {
  poolscope::Pool pool(
      {.url = "sqlite://:memory:", .name = "consumer", .pool_size = 1, .max_overflow = 0});
  poolscope::tracing::Tracer tracer(pool);
  poolscope::cache::TtlCache<std::string, int> answers({.name = "answers"});
  auto metrics = std::make_shared<poolscope::exporters::MetricsCollector>();
  metrics->add_pool(pool);
  metrics->add_tracer(tracer);
  metrics->add_cache(answers);
  poolscope::exporters::MetricsServer server(metrics, {.listen = "127.0.0.1:0"});
  int answer = 0;
  {
    poolscope::Lease sql = pool.acquire();
    *sql << "SELECT 6 * 7", soci::into(answer);
  }
  answers.put("answer", answer);
  const std::string text = metrics->text();
  const bool ok =
      answer == 42 && server.port() > 0 &&
      text.find("poolscope_site_acquires_total{pool=\"consumer\"") != std::string::npos &&
      text.find("poolscope_cache_entries{cache=\"answers\",pool=\"\"} 1") != std::string::npos;
  std::printf("answer=%d components=%s\n", answer, ok ? "ok" : "missing");
  return ok ? 0 : 1;
}
