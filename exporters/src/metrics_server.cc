#include "poolscope/exporters/metrics_server.h"

#include <charconv>
#include <stdexcept>

#include "http_server.h"
#include "poolscope/base/config_check.h"

namespace poolscope::exporters {

void MetricsServerConfig::validate() const {
  constexpr std::string_view kConfig = "MetricsServerConfig";
  const std::size_t colon = listen.rfind(':');
  int port = -1;
  if (colon != std::string::npos) {
    std::from_chars(listen.data() + colon + 1, listen.data() + listen.size(), port);
  }
  // One address: civetweb would listen on every one of a list, and port()
  // and url() name one.
  if (colon == std::string::npos || colon == 0 || colon + 1 == listen.size() || port < 0 ||
      port > 65535 || listen.find_first_not_of("0123456789", colon + 1) != std::string::npos ||
      listen.find_first_of(", \t") != std::string::npos) {
    poolscope::detail::invalid_field(kConfig, "listen",
                                     "must be one host:port, e.g. 127.0.0.1:9464",
                                     "'" + listen.substr(0, 80) + "'");
  }
  if (admin && admin_token.size() < 16) {
    poolscope::detail::invalid_field(kConfig, "admin_token",
                                     "must be at least 16 characters when admin is on",
                                     std::to_string(admin_token.size()));
  }
  poolscope::detail::check_at_least(kConfig, "threads", threads, 1);
  // civetweb refuses more than it was built for (65536 by default) with a
  // start failure that reads like a bind error; a scrape endpoint needs far
  // fewer.
  poolscope::detail::check_at_most(kConfig, "threads", threads, 1024);
  if (request_timeout < std::chrono::milliseconds(10) ||
      request_timeout > std::chrono::milliseconds(60'000)) {
    poolscope::detail::invalid_field(kConfig, "request_timeout", "must be 10 ms to 60 s",
                                     poolscope::detail::ms_text(request_timeout));
  }
}

namespace {

const MetricsServerConfig& validated(const MetricsServerConfig& config) {
  config.validate();
  return config;
}

}  // namespace

MetricsServer::MetricsServer(std::shared_ptr<MetricsCollector> collector,
                             MetricsServerConfig config)
    : config_(validated(config)) {
  if (collector == nullptr) throw std::invalid_argument("MetricsServer: the collector is null");
  server_ = std::make_unique<detail::HttpServer>(std::move(collector), config_);
  port_ = server_->port();
}

MetricsServer::~MetricsServer() = default;

std::string MetricsServer::url() const {
  const std::string host = config_.listen.substr(0, config_.listen.rfind(':'));
  return "http://" + (host == "0.0.0.0" ? std::string("127.0.0.1") : host) + ":" +
         std::to_string(port_);
}

}  // namespace poolscope::exporters
