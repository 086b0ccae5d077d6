#pragma once
// A small blocking HTTP/1.1 client for the command line's --server mode:
// http:// to loopback, https:// anywhere (the certificate verified against
// the system's CAs or --ca FILE, and the host name checked). The admin token
// is never sent in clear text over a network: http:// to a host that is not
// loopback is refused.
#include <string>

namespace atl::app {

struct HttpResponse {
  int status = 0;
  std::string body;
};

struct HttpTarget {
  std::string base_url;  // http://127.0.0.1:8081 or https://host:8081 (a trailing '/' is fine)
  std::string token;     // sent as "Authorization: Bearer"
  std::string ca_file;   // PEM CA certificates to trust for https:// (default: the system's)
};

/// Sends one request for `path` (starting with '/') under the target's URL
/// and reads the whole response. Throws std::runtime_error naming the URL on
/// connection, TLS or verification failures.
HttpResponse http_request(const HttpTarget& target, const std::string& method,
                          const std::string& path, const std::string& content_type = "",
                          const std::string& body = "");

}  // namespace atl::app
