// HTTP over plain sockets for the exporters' tests: a request to any local
// address with a deadline (civetweb's client waits as long as the server
// lets it), and connections that say nothing, as a silent or slow client
// holds them.

#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

namespace poolscope::testing {

// A connected TCP socket to host:port (an IPv4 address), or -1.
inline int tcp_connect(const std::string& host, int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

struct RawResponse {
  int status = 0;  // 0: no (complete) response
  std::string body;
  std::string error;
  std::chrono::nanoseconds elapsed{0};  // from connect to the end of the response
};

// method path on host:port, HTTP/1.0, reading until the server closes or
// the deadline passes. Never throws.
inline RawResponse raw_request(const std::string& host, int port, const std::string& method,
                               const std::string& path,
                               const std::vector<std::string>& headers = {},
                               std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  RawResponse r;
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + timeout;
  const int fd = tcp_connect(host, port);
  if (fd < 0) {
    r.error = std::string("connect: ") + std::strerror(errno);
    return r;
  }
  std::string request = method + " " + path + " HTTP/1.0\r\nHost: " + host + "\r\n";
  for (const std::string& h : headers) request += h + "\r\n";
  request += "Content-Length: 0\r\n\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    r.error = "send failed";
    ::close(fd);
    return r;
  }
  std::string raw;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      r.error = "no complete response within the deadline";
      break;
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buffer[16384];
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n < 0) {
      r.error = std::string("recv: ") + std::strerror(errno);
      break;
    }
    if (n == 0) {  // the server closed: the response is complete
      const std::size_t end = raw.find("\r\n\r\n");
      if (raw.starts_with("HTTP/1.") && raw.size() > 12 && end != std::string::npos) {
        r.status = std::stoi(raw.substr(9, 3));
        r.body = raw.substr(end + 4);
      } else {
        r.error = "closed without a response";
      }
      break;
    }
    raw.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  r.elapsed = std::chrono::steady_clock::now() - start;
  return r;
}

}  // namespace poolscope::testing
