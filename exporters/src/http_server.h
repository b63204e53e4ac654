// HttpServer: MetricsServer's civetweb side. Each endpoint is a CivetHandler
// object registered for its path (as prometheus-cpp's Exposer registers its
// handlers), holding what it serves, so a request finds its server through
// the handler it reaches: no process-wide state routes anything.
//
// The class is thread-safe. Requests run on civetweb's threads; the
// destructor stops the server, waiting for requests in progress, before the
// endpoints go.

#pragma once

#include <memory>
#include <string>

#include "poolscope/exporters/metrics_server.h"

class CivetServer;

namespace poolscope::exporters::detail {

class Endpoint;

class HttpServer {
 public:
  // Listens and starts serving. Throws poolscope::Error naming the address
  // and civetweb's reason when it cannot listen.
  HttpServer(std::shared_ptr<MetricsCollector> collector, const MetricsServerConfig& config);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The port listened on (the chosen one for port 0).
  int port() const noexcept { return port_; }

 private:
  std::unique_ptr<Endpoint> metrics_;
  std::unique_ptr<Endpoint> stats_;
  std::unique_ptr<Endpoint> admin_;
  // Last: destroyed first, so no request is in progress when the endpoints go.
  std::unique_ptr<CivetServer> server_;
  int port_ = 0;
  std::string host_;  // where to connect to wake the listening thread
};

}  // namespace poolscope::exporters::detail
