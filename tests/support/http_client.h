// A blocking HTTP/1.0 client for tests, on civetweb's client API.

#pragma once

#include <string>
#include <utility>
#include <vector>

namespace poolscope::testing {

struct HttpResponse {
  int status = 0;  // 0: no connection
  std::string body;
  std::string error;  // why there was no response
};

// method + path (with query) on 127.0.0.1:port, with extra headers
// ("Name: value"). Never throws.
HttpResponse http_request(int port, const std::string& method, const std::string& path,
                          const std::vector<std::string>& headers = {});

// Percent-encodes a query parameter value.
std::string url_encode(const std::string& text);

}  // namespace poolscope::testing
