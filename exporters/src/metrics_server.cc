// The Exposer owns its CivetServer, but accepts civetweb callbacks: a
// begin_request hook answers /stats.json and /admin/ itself and hands every
// other request on to the Exposer's handlers. civetweb hooks carry no user
// pointer (the context's belongs to CivetServer), so servers are found by
// the port the request came in on: one server per port in a process (a
// second one, even on another address, is refused), one port per server.
// Nothing thrown while answering reaches civetweb's C code: the hook turns
// it into a 500.

#include "poolscope/exporters/metrics_server.h"

#include <CivetServer.h>
#include <civetweb.h>
#include <prometheus/exposer.h>

#include <charconv>
#include <cstring>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "poolscope/pool/errors.h"

namespace poolscope::exporters {
namespace {

std::mutex g_servers_mu;
// By listening port. Null: reserved by a server that is starting.
std::map<int, MetricsServer*> g_servers;

int reply(mg_connection* conn, int status, const std::string& content_type, const std::string& body,
          const char* extra_header = nullptr) {
  mg_printf(
      conn,
      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: close\r\n\r\n",
      status, mg_get_response_code_text(conn, status), content_type.c_str(), body.size(),
      extra_header != nullptr ? extra_header : "");
  mg_write(conn, body.data(), body.size());
  return status;
}

int reply_json(mg_connection* conn, int status, const nlohmann::json& body,
               const char* extra = nullptr) {
  // Replies echo names from the URL, which need not be UTF-8.
  return reply(conn, status, "application/json",
               body.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", extra);
}

int begin_request(mg_connection* conn) noexcept {
  try {
    const mg_request_info* info = mg_get_request_info(conn);
    MetricsServer* server = nullptr;
    {
      std::lock_guard lock(g_servers_mu);
      const auto it = g_servers.find(info->server_port);
      if (it != g_servers.end()) server = it->second;
    }
    return server != nullptr ? server->handle(conn) : 0;
  } catch (...) {
    // Nothing may unwind into civetweb. Static text: allocating may be what failed.
    static constexpr char kBody[] = "{\"error\": \"internal error\"}\n";
    mg_printf(conn,
              "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
              "Content-Length: %zu\r\nConnection: close\r\n\r\n",
              sizeof kBody - 1);
    mg_write(conn, kBody, sizeof kBody - 1);
    return 500;
  }
}

// The port of a validated listen string.
int port_of(const std::string& listen) {
  int port = 0;
  const std::size_t colon = listen.rfind(':');
  std::from_chars(listen.data() + colon + 1, listen.data() + listen.size(), port);
  return port;
}

// Equal in time independent of where the strings differ.
bool same_token(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i] ^ b[i % (b.empty() ? 1 : b.size())]);
  return diff == 0 && !b.empty();
}

std::string query_parameter(const mg_request_info* info, const char* name) {
  if (info->query_string == nullptr) return {};
  char value[1024];
  const int n =
      mg_get_var(info->query_string, std::strlen(info->query_string), name, value, sizeof value);
  return n >= 0 ? std::string(value, static_cast<std::size_t>(n)) : std::string();
}

}  // namespace

void MetricsServerConfig::validate() const {
  const std::size_t colon = listen.rfind(':');
  int port = -1;
  if (colon != std::string::npos) {
    std::from_chars(listen.data() + colon + 1, listen.data() + listen.size(), port);
  }
  // One address: civetweb would listen on every one of a list, but requests
  // are routed by port and the server registers one.
  if (colon == std::string::npos || colon == 0 || port < 0 || port > 65535 ||
      listen.find_first_not_of("0123456789", colon + 1) != std::string::npos ||
      listen.find_first_of(", \t") != std::string::npos) {
    throw std::invalid_argument(
        "MetricsServerConfig.listen must be one host:port, e.g. 127.0.0.1:9464 (got '" + listen +
        "')");
  }
  if (admin && admin_token.size() < 16) {
    throw std::invalid_argument(
        "MetricsServerConfig.admin_token must be at least 16 characters when admin is on (got " +
        std::to_string(admin_token.size()) + ")");
  }
  if (threads < 1)
    throw std::invalid_argument("MetricsServerConfig.threads must be at least 1 (got 0)");
}

MetricsServer::MetricsServer(std::shared_ptr<MetricsCollector> collector,
                             MetricsServerConfig config)
    : collector_(std::move(collector)), config_((config.validate(), std::move(config))) {
  if (collector_ == nullptr) throw std::invalid_argument("MetricsServer: the collector is null");
  static CivetCallbacks callbacks = [] {
    CivetCallbacks c{};
    c.begin_request = begin_request;
    return c;
  }();
  const auto in_use = [this](int port) {
    return Error("cannot serve metrics on " + config_.listen +
                 ": the address is in use: another MetricsServer in this process serves port " +
                 std::to_string(port) + " (servers are told apart by port, whatever the address)");
  };
  // Reserve a fixed port before listening; a chosen one (port 0) is
  // checked once known.
  const int wanted = port_of(config_.listen);
  if (wanted != 0) {
    std::lock_guard lock(g_servers_mu);
    if (!g_servers.emplace(wanted, nullptr).second) throw in_use(wanted);
  }
  try {
    try {
      exposer_ = std::make_unique<prometheus::Exposer>(
          std::vector<std::string>{"listening_ports", config_.listen, "num_threads",
                                   std::to_string(config_.threads)},
          &callbacks);
    } catch (const std::exception& e) {
      throw Error("cannot serve metrics on " + config_.listen +
                  ": the address is in use or cannot be listened on (" + e.what() + ")");
    }
    exposer_->RegisterCollectable(collector_);
    const std::vector<int> ports = exposer_->GetListeningPorts();
    port_ = ports.empty() ? wanted : ports.front();
    std::lock_guard lock(g_servers_mu);
    if (wanted == 0 && g_servers.contains(port_)) throw in_use(port_);
    g_servers[port_] = this;
  } catch (...) {
    exposer_.reset();
    if (wanted != 0) {
      std::lock_guard lock(g_servers_mu);
      g_servers.erase(wanted);
    }
    throw;
  }
}

MetricsServer::~MetricsServer() {
  {
    std::lock_guard lock(g_servers_mu);
    g_servers.erase(port_);
  }
  exposer_.reset();  // joins the request threads
}

std::string MetricsServer::url() const {
  const std::string host = config_.listen.substr(0, config_.listen.rfind(':'));
  return "http://" + (host == "0.0.0.0" ? std::string("127.0.0.1") : host) + ":" +
         std::to_string(port_);
}

int MetricsServer::handle(mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  const std::string_view uri = info->local_uri != nullptr ? info->local_uri : "";
  const std::string_view method = info->request_method != nullptr ? info->request_method : "";
  if (uri == "/stats.json") {
    if (method != "GET") return reply_json(conn, 405, {{"error", "use GET"}});
    return reply(conn, 200, "application/json", collector_->json() + "\n");
  }
  if (!uri.starts_with("/admin/") && uri != "/admin") return 0;  // the Exposer's (or its 404)

  if (!config_.admin) return reply_json(conn, 404, {{"error", "admin endpoints are off"}});
  const char* auth = mg_get_header(conn, "Authorization");
  const std::string_view given = auth != nullptr ? auth : "";
  if (!given.starts_with("Bearer ")) {
    return reply_json(conn, 401, {{"error", "missing bearer token"}},
                      "WWW-Authenticate: Bearer realm=\"poolscope\"\r\n");
  }
  if (!same_token(given.substr(7), config_.admin_token)) {
    return reply_json(conn, 403, {{"error", "wrong bearer token"}});
  }

  if (uri == "/admin/caches") {
    if (method != "GET") return reply_json(conn, 405, {{"error", "use GET"}});
    return reply_json(conn, 200, {{"caches", collector_->cache_names()}});
  }
  constexpr std::string_view kPrefix = "/admin/caches/";
  if (uri.starts_with(kPrefix)) {
    const std::string_view rest = uri.substr(kPrefix.size());
    const std::size_t slash = rest.rfind('/');
    if (slash != std::string_view::npos) {
      const std::string name(rest.substr(0, slash));
      const std::string_view action = rest.substr(slash + 1);
      if (method != "POST") return reply_json(conn, 405, {{"error", "use POST"}});
      if (action == "clear") {
        if (!collector_->clear_cache(name))
          return reply_json(conn, 404, {{"error", "no cache " + name}});
        return reply_json(conn, 200, {{"cache", name}, {"cleared", true}});
      }
      if (action == "invalidate") {
        const std::string pattern = query_parameter(info, "pattern");
        if (pattern.empty()) return reply_json(conn, 400, {{"error", "give ?pattern=<glob>"}});
        const std::optional<std::size_t> n = collector_->invalidate_cache(name, pattern);
        if (!n) return reply_json(conn, 404, {{"error", "no cache " + name + " with text keys"}});
        return reply_json(conn, 200, {{"cache", name}, {"pattern", pattern}, {"invalidated", *n}});
      }
    }
  }
  return reply_json(conn, 404, {{"error", "no such admin endpoint"}});
}

}  // namespace poolscope::exporters
