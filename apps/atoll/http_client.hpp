#pragma once
// A small blocking HTTP/1.1 client for the command line's --server mode.
// http:// only: the admin API listens on loopback by default; reach a remote
// one through an SSH tunnel or a TLS-terminating proxy on the same host.
#include <string>

namespace atl::app {

struct HttpResponse {
  int status = 0;
  std::string body;
};

/// Sends one request and reads the whole response. Throws std::runtime_error
/// with the URL on connection failures.
HttpResponse http_request(const std::string& method, const std::string& url,
                          const std::string& token, const std::string& content_type = "",
                          const std::string& body = "");

}  // namespace atl::app
