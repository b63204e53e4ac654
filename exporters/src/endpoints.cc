#include "endpoints.h"

#include <civetweb.h>

#include <cstring>
#include <nlohmann/json.hpp>

namespace poolscope::exporters::detail {
namespace {

struct Request {
  std::string_view method;
  std::string_view uri;  // decoded path, without the query
  const char* query;     // raw query string, or nullptr
};

Request request_of(mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  return {info->request_method != nullptr ? info->request_method : "",
          info->local_uri != nullptr ? info->local_uri : "", info->query_string};
}

void reply(mg_connection* conn, int status, const std::string& content_type,
           const std::string& body, const char* extra_header = nullptr) {
  mg_printf(
      conn,
      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: close\r\n\r\n",
      status, mg_get_response_code_text(conn, status), content_type.c_str(), body.size(),
      extra_header != nullptr ? extra_header : "");
  if (request_of(conn).method != "HEAD") mg_write(conn, body.data(), body.size());
}

void reply_json(mg_connection* conn, int status, const nlohmann::json& body,
                const char* extra = nullptr) {
  // Replies echo names from the URL, which need not be UTF-8.
  reply(conn, status, "application/json",
        body.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", extra);
}

// 405 unless the method is GET or HEAD.
bool read_only(mg_connection* conn, std::string_view method) {
  if (method == "GET" || method == "HEAD") return true;
  reply_json(conn, 405, {{"error", "use GET"}}, "Allow: GET, HEAD\r\n");
  return false;
}

// Equal in time independent of where the strings differ.
bool same_token(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i] ^ b[i % (b.empty() ? 1 : b.size())]);
  return diff == 0 && !b.empty();
}

// A query parameter, decoded, of any length (the request's size is bounded
// by civetweb's max_request_size, which answers 413 past it).
std::string query_parameter(const char* query, const char* name) {
  std::string value;
  if (query != nullptr) CivetServer::getParam(query, std::strlen(query), name, value);
  return value;
}

class MetricsEndpoint final : public Endpoint {
 public:
  explicit MetricsEndpoint(std::shared_ptr<const MetricsCollector> c) : collector_(std::move(c)) {}

 protected:
  void serve(mg_connection* conn) const override {
    const Request r = request_of(conn);
    if (r.uri != "/metrics") return reply_json(conn, 404, {{"error", "no such endpoint"}});
    if (!read_only(conn, r.method)) return;
    reply(conn, 200, "text/plain; version=0.0.4; charset=utf-8", collector_->text());
  }

 private:
  const std::shared_ptr<const MetricsCollector> collector_;
};

class StatsEndpoint final : public Endpoint {
 public:
  explicit StatsEndpoint(std::shared_ptr<const MetricsCollector> c) : collector_(std::move(c)) {}

 protected:
  void serve(mg_connection* conn) const override {
    const Request r = request_of(conn);
    if (r.uri != "/stats.json") return reply_json(conn, 404, {{"error", "no such endpoint"}});
    if (!read_only(conn, r.method)) return;
    reply(conn, 200, "application/json", collector_->json() + "\n");
  }

 private:
  const std::shared_ptr<const MetricsCollector> collector_;
};

class AdminEndpoint final : public Endpoint {
 public:
  AdminEndpoint(std::shared_ptr<MetricsCollector> c, bool enabled, std::string token)
      : collector_(std::move(c)), enabled_(enabled), token_(std::move(token)) {}

 protected:
  void serve(mg_connection* conn) const override {
    if (!enabled_) return reply_json(conn, 404, {{"error", "admin endpoints are off"}});
    const char* auth = mg_get_header(conn, "Authorization");
    const std::string_view given = auth != nullptr ? auth : "";
    if (!given.starts_with("Bearer ")) {
      return reply_json(conn, 401, {{"error", "missing bearer token"}},
                        "WWW-Authenticate: Bearer realm=\"poolscope\"\r\n");
    }
    if (!same_token(given.substr(7), token_)) {
      return reply_json(conn, 403, {{"error", "wrong bearer token"}});
    }
    route(conn, request_of(conn));
  }

 private:
  void route(mg_connection* conn, const Request& r) const {
    if (r.uri == "/admin/caches") {
      if (!read_only(conn, r.method)) return;
      return reply_json(conn, 200, {{"caches", collector_->cache_names()}});
    }
    constexpr std::string_view kPrefix = "/admin/caches/";
    const std::string_view rest = r.uri.starts_with(kPrefix) ? r.uri.substr(kPrefix.size()) : "";
    const std::size_t slash = rest.rfind('/');
    if (slash == std::string_view::npos) {
      return reply_json(conn, 404, {{"error", "no such admin endpoint"}});
    }
    const std::string name(rest.substr(0, slash));
    const std::string_view action = rest.substr(slash + 1);
    if (action != "clear" && action != "invalidate") {
      return reply_json(conn, 404, {{"error", "no such admin endpoint"}});
    }
    if (r.method != "POST")
      return reply_json(conn, 405, {{"error", "use POST"}}, "Allow: POST\r\n");
    if (action == "clear") {
      if (!collector_->clear_cache(name))
        return reply_json(conn, 404, {{"error", "no cache " + name}});
      return reply_json(conn, 200, {{"cache", name}, {"cleared", true}});
    }
    const std::string pattern = query_parameter(r.query, "pattern");
    if (pattern.empty()) return reply_json(conn, 400, {{"error", "give ?pattern=<glob>"}});
    const std::optional<std::size_t> n = collector_->invalidate_cache(name, pattern);
    if (!n) return reply_json(conn, 404, {{"error", "no cache " + name + " with text keys"}});
    reply_json(conn, 200, {{"cache", name}, {"pattern", pattern}, {"invalidated", *n}});
  }

  const std::shared_ptr<MetricsCollector> collector_;
  const bool enabled_;
  const std::string token_;
};

}  // namespace

bool Endpoint::answer(mg_connection* conn) noexcept {
  try {
    serve(conn);
  } catch (...) {
    // Static text: allocating may be what failed.
    static constexpr char kBody[] = "{\"error\": \"internal error\"}\n";
    mg_printf(conn,
              "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
              "Content-Length: %zu\r\nConnection: close\r\n\r\n",
              sizeof kBody - 1);
    mg_write(conn, kBody, sizeof kBody - 1);
  }
  return true;  // answered: civetweb sends nothing more
}

std::unique_ptr<Endpoint> metrics_endpoint(std::shared_ptr<const MetricsCollector> collector) {
  return std::make_unique<MetricsEndpoint>(std::move(collector));
}

std::unique_ptr<Endpoint> stats_endpoint(std::shared_ptr<const MetricsCollector> collector) {
  return std::make_unique<StatsEndpoint>(std::move(collector));
}

std::unique_ptr<Endpoint> admin_endpoint(std::shared_ptr<MetricsCollector> collector, bool enabled,
                                         std::string token) {
  return std::make_unique<AdminEndpoint>(std::move(collector), enabled, std::move(token));
}

}  // namespace poolscope::exporters::detail
