// Stopping: civetweb's listening thread notices a stop only when its poll
// returns, which it does every 2 s or on a connection; the destructor
// connects to its own address until the stop is done, so destroying a server
// takes milliseconds, not 2 s.
//
// civetweb reports why it could not start (a port in use, say) only through
// its log callback, which carries no pointer of ours: the constructing thread
// collects those lines in a thread_local for the duration of its own start,
// which runs on that thread. Every other log line is dropped: civetweb would
// print it nowhere anyway (no error_log_file).

#include "http_server.h"

#include <CivetServer.h>
#include <civetweb.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "endpoints.h"
#include "poolscope/base/error.h"

namespace poolscope::exporters::detail {
namespace {

thread_local std::string* t_start_log = nullptr;

int log_message(const mg_connection*, const char* message) {
  if (t_start_log != nullptr && message != nullptr) {
    try {
      if (!t_start_log->empty()) t_start_log->append("; ");
      t_start_log->append(message);
    } catch (...) {
      // Out of memory: the error says less.
    }
  }
  return 1;  // handled: civetweb prints nothing itself
}

std::vector<std::string> options_of(const MetricsServerConfig& config) {
  return {"listening_ports", config.listen, "num_threads", std::to_string(config.threads),
          // Bounds how long a silent or slow client holds a thread.
          "request_timeout_ms", std::to_string(config.request_timeout.count()),
          // A kept-alive connection would hold a thread between requests.
          "enable_keep_alive", "no",
          // The request line and headers: room for long invalidation
          // patterns (civetweb answers 400 past it, before any handler).
          "max_request_size", "65536"};
}

// The host part of a validated listen string, as an address to connect to:
// a wildcard becomes its loopback, brackets come off an IPv6 address.
std::string connect_host(const std::string& listen) {
  std::string host = listen.substr(0, listen.rfind(':'));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host == "0.0.0.0") return "127.0.0.1";
  if (host == "::") return "::1";
  return host;
}

// Opens and closes a connection to host:port, not waiting for it.
void poke(const std::string& host, int port) noexcept {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) return;
  const int fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    (void)::connect(fd, found->ai_addr, found->ai_addrlen);
    ::close(fd);
  }
  ::freeaddrinfo(found);
}

}  // namespace

HttpServer::HttpServer(std::shared_ptr<MetricsCollector> collector,
                       const MetricsServerConfig& config)
    : metrics_(metrics_endpoint(collector)),
      stats_(stats_endpoint(collector)),
      admin_(admin_endpoint(collector, config.admin, config.admin_token)) {
  static const CivetCallbacks callbacks = [] {
    CivetCallbacks c;
    c.log_message = log_message;
    return c;
  }();
  std::string reasons;
  t_start_log = &reasons;
  try {
    server_ = std::make_unique<CivetServer>(options_of(config), &callbacks);
  } catch (const std::exception& e) {
    t_start_log = nullptr;
    const bool in_use = reasons.find("in use") != std::string::npos;
    throw Error("cannot serve metrics on " + config.listen + ": " +
                (in_use ? "the address is in use" : "the address cannot be listened on") + " (" +
                (reasons.empty() ? std::string(e.what()) : reasons) + ")");
  }
  t_start_log = nullptr;
  server_->addHandler("/metrics", *metrics_);
  server_->addHandler("/stats.json", *stats_);
  server_->addHandler("/admin", *admin_);
  const std::vector<int> ports = server_->getListeningPorts();
  port_ = ports.empty() ? 0 : ports.front();
  host_ = connect_host(config.listen);
}

HttpServer::~HttpServer() {
  std::atomic<bool> stopped{false};
  std::thread stopper;
  try {
    stopper = std::thread([&] {
      server_->close();  // joins the request threads
      stopped.store(true, std::memory_order_release);
    });
  } catch (...) {
    server_->close();  // no thread to spare: stop the slow way
    return;
  }
  // Waits first: a poke that arrives before the stop is flagged would be
  // accepted as a request.
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (stopped.load(std::memory_order_acquire)) break;
    poke(host_, port_);
  }
  stopper.join();
}

}  // namespace poolscope::exporters::detail
