// MetricsServer: serves a MetricsCollector over HTTP.
//
//   GET  /metrics                               Prometheus text exposition
//   GET  /stats.json                            the collector's JSON snapshot
//   GET  /admin/caches                          admin: the caches by name
//   POST /admin/caches/<name>/clear             admin: empty a cache
//   POST /admin/caches/<name>/invalidate?pattern=<glob>
//                                               admin: drop the keys matching a glob
//
// It listens on 127.0.0.1:9464 unless told otherwise ("0.0.0.0:9464" for any
// address, port 0 for a free one). The admin endpoints (a cache's
// `stats|clear` CLI, over HTTP) are off unless configured with a token, and
// then refuse any request without "Authorization: Bearer <token>". A pattern
// may be as long as the request line allows (64 KiB for the request line
// and headers; civetweb refuses longer requests with 400).
//
// Slow clients: each connection is served by one of `threads` threads, and a
// client that has not sent its whole request within request_timeout is cut
// off, so silent or slow connections cannot stop a scrape: while fewer than
// `threads` of them are open, /metrics answers at once; while fewer than 2 x
// threads, within about request_timeout. Connections are not kept alive
// between requests (a kept connection would hold a thread while idle). The
// 64 threads of the default take about 1.5 MB.
//
// The class is thread-safe. Requests are served on the server's own threads;
// the destructor waits for requests in progress.

#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "poolscope/exporters/metrics_collector.h"

namespace poolscope::exporters {

namespace detail {
class HttpServer;
}

struct MetricsServerConfig {
  // The one host:port to listen on; IPv6 as [::1]:9464. Not a list.
  std::string listen = "127.0.0.1:9464";
  // Enables the admin endpoints; they then require this bearer token.
  bool admin = false;
  std::string admin_token{};
  // Threads serving requests: 1 to 1024. Each idle or slow client holds one
  // for up to request_timeout.
  std::size_t threads = 64;
  // How long a client may take to send its request (and to take each part of
  // the response): 10 ms to 60 s.
  std::chrono::milliseconds request_timeout{500};

  // Throws std::invalid_argument naming the field: listen must be one
  // host:port, admin needs a token of at least 16 characters, threads and
  // request_timeout must be within the bounds above.
  void validate() const;
};

class MetricsServer {
 public:
  // Starts serving. Throws std::invalid_argument for a bad config or a null
  // collector, and poolscope::Error when the address cannot be listened on
  // (in use, not local), naming it and civetweb's reason.
  explicit MetricsServer(std::shared_ptr<MetricsCollector> collector,
                         MetricsServerConfig config = {});
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // The port listened on (the chosen one when configured with port 0).
  int port() const noexcept { return port_; }
  // "http://127.0.0.1:9464".
  std::string url() const;

 private:
  const MetricsServerConfig config_;
  std::unique_ptr<detail::HttpServer> server_;
  int port_ = 0;
};

}  // namespace poolscope::exporters
