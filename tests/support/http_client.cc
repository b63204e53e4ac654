#include "http_client.h"

#include <civetweb.h>

#include <cctype>
#include <cstdio>

namespace poolscope::testing {

HttpResponse http_request(int port, const std::string& method, const std::string& path,
                          const std::vector<std::string>& headers) {
  HttpResponse response;
  std::string extra;
  for (const std::string& h : headers) extra += h + "\r\n";
  char error[256] = {0};
  mg_connection* conn =
      mg_download("127.0.0.1", port, 0, error, sizeof error,
                  "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n%s\r\n",
                  method.c_str(), path.c_str(), extra.c_str());
  if (conn == nullptr) {
    response.error = error;
    return response;
  }
  if (const mg_response_info* info = mg_get_response_info(conn))
    response.status = info->status_code;
  char buffer[8192];
  for (int n; (n = mg_read(conn, buffer, sizeof buffer)) > 0;)
    response.body.append(buffer, static_cast<std::size_t>(n));
  mg_close_connection(conn);
  return response;
}

std::string url_encode(const std::string& text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace poolscope::testing
