#pragma once
// Security headers: the browser-side defences a response should ask for.
//
// Set before the rest of the pipeline runs, so a handler overrides any of
// them with set_header() (or removes one) for its own responses; an empty
// option is not sent at all. Error pages the server writes after a handler
// threw start from clean headers and do not carry them.
//
// | option                    | default                  | why                                    |
// |---------------------------|--------------------------|----------------------------------------|
// | content_type_options      | "nosniff"                | browsers must not sniff an upload or a |
// |                           |                          | text file into script or HTML          |
// | frame_options             | "DENY"                   | clickjacking: nobody frames this site  |
// |                           |                          | ("SAMEORIGIN" if it frames itself)     |
// | referrer_policy           | "strict-origin-when-     | paths and query tokens do not leak to  |
// |                           | cross-origin"            | other sites; only the origin goes      |
// | content_security_policy   | "" (not sent)            | a policy must fit the application; a   |
// |                           |                          | generic one breaks more than it guards |
// | strict_transport_security | "max-age=31536000"       | a year of HTTPS-only after one visit:  |
// |                           |                          | SSL stripping. Sent over HTTPS only    |
// |                           |                          | (browsers ignore it over HTTP); no     |
// |                           |                          | includeSubDomains: it binds hosts this |
// |                           |                          | server does not know                   |
// | extra                     | {}                       | more headers (Permissions-Policy,      |
// |                           |                          | Cross-Origin-Opener-Policy, …)         |
//
// Behind a proxy that terminates TLS, scheme() is "http" and HSTS is not
// sent: let the proxy send it (a forwarded "https" is a client's claim).
#include <atoll/web/pipeline.hpp>

#include <string>
#include <utility>
#include <vector>

namespace atl::web {

struct SecurityHeadersOptions {
  std::string content_type_options = "nosniff";
  std::string frame_options = "DENY";
  std::string referrer_policy = "strict-origin-when-cross-origin";
  std::string content_security_policy;
  std::string strict_transport_security = "max-age=31536000";
  std::vector<std::pair<std::string, std::string>> extra;
};

/// The middleware. Throws std::invalid_argument for a header that could not
/// be sent (a value with CR or LF, a name that is not a token).
Middleware security_headers(SecurityHeadersOptions options = {});

}  // namespace atl::web
