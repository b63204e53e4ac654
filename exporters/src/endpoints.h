// The HTTP endpoints of MetricsServer as civetweb handler objects. Each
// answers every method itself (405 where it does not apply) and sends whole
// responses with "Connection: close". Nothing thrown while answering reaches
// civetweb's C code: it becomes a 500.
//
// The classes are thread-safe: they hold only constants and the collector,
// which is.

#pragma once

#include <CivetServer.h>

#include <memory>
#include <string>
#include <string_view>

#include "poolscope/exporters/metrics_collector.h"

namespace poolscope::exporters::detail {

class Endpoint : public CivetHandler {
 public:
  bool handleGet(CivetServer*, mg_connection* conn) override { return answer(conn); }
  bool handleHead(CivetServer*, mg_connection* conn) override { return answer(conn); }
  bool handlePost(CivetServer*, mg_connection* conn) override { return answer(conn); }
  bool handlePut(CivetServer*, mg_connection* conn) override { return answer(conn); }
  bool handleDelete(CivetServer*, mg_connection* conn) override { return answer(conn); }
  bool handleOptions(CivetServer*, mg_connection* conn) override { return answer(conn); }
  bool handlePatch(CivetServer*, mg_connection* conn) override { return answer(conn); }

 protected:
  // Sends the whole response; may throw.
  virtual void serve(mg_connection* conn) const = 0;

 private:
  bool answer(mg_connection* conn) noexcept;
};

// GET /metrics: the Prometheus text exposition of the collector.
std::unique_ptr<Endpoint> metrics_endpoint(std::shared_ptr<const MetricsCollector> collector);

// GET /stats.json: the collector's JSON snapshot.
std::unique_ptr<Endpoint> stats_endpoint(std::shared_ptr<const MetricsCollector> collector);

// /admin/...: 404 unless enabled; then a bearer token, compared in constant
// time, before anything else.
std::unique_ptr<Endpoint> admin_endpoint(std::shared_ptr<MetricsCollector> collector, bool enabled,
                                         std::string token);

}  // namespace poolscope::exporters::detail
