// MetricsServer: serves a MetricsCollector over HTTP.
//
//   GET  /metrics                               Prometheus text (prometheus-cpp's Exposer)
//   GET  /stats.json                            the collector's JSON snapshot
//   GET  /admin/caches                          admin: the caches by name
//   POST /admin/caches/<name>/clear             admin: empty a cache
//   POST /admin/caches/<name>/invalidate?pattern=<glob>
//                                               admin: drop the keys matching a glob
//
// It listens on 127.0.0.1:9464 unless told otherwise ("0.0.0.0:9464" for any
// address, port 0 for a free one), on one address: servers are told apart by
// port, so a process runs at most one MetricsServer per port. The admin endpoints (the incidents'
// `cache stats|clear` CLI, over HTTP) are off unless configured with a token, and then refuse any
// request without "Authorization: Bearer <token>".
//
// The class is thread-safe. Requests are served on the server's own threads.

#pragma once

#include <memory>
#include <string>

#include "poolscope/exporters/metrics_collector.h"

struct mg_connection;

namespace prometheus {
class Exposer;
}

namespace poolscope::exporters {

struct MetricsServerConfig {
  // The one host:port to listen on; IPv6 as [::1]:9464. Not a list.
  std::string listen = "127.0.0.1:9464";
  // Enables the admin endpoints; they then require this bearer token.
  bool admin = false;
  std::string admin_token;
  std::size_t threads = 2;

  // Throws std::invalid_argument naming the field: listen must be one host:port,
  // admin needs a token of at least 16 characters, threads at least 1.
  void validate() const;
};

class MetricsServer {
 public:
  // Starts serving. Throws std::invalid_argument for a bad config and
  // poolscope::Error when the address cannot be listened on (in use, not
  // local, or its port served by another MetricsServer in this process,
  // even on another address), naming it.
  explicit MetricsServer(std::shared_ptr<MetricsCollector> collector,
                         MetricsServerConfig config = {});
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // The port listened on (the chosen one when configured with port 0).
  int port() const noexcept { return port_; }
  // "http://127.0.0.1:9464".
  std::string url() const;

  // Handles a request the Exposer does not; for the server's request hook
  // (which turns anything it throws into a 500). Returns the HTTP status
  // sent, or 0 to let the Exposer answer.
  int handle(mg_connection* conn);

 private:
  const std::shared_ptr<MetricsCollector> collector_;
  const MetricsServerConfig config_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
};

}  // namespace poolscope::exporters
