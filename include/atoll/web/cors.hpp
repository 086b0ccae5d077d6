#pragma once
// CORS: which other origins' scripts may call this server (Fetch standard).
//
// A preflight (OPTIONS with Access-Control-Request-Method) from an allowed
// origin is answered here with 204 and the allowed methods and headers; one
// from another origin gets 403. An actual request from an allowed origin
// goes on with Access-Control-Allow-Origin (and -Credentials, -Expose-Headers)
// already set; from another origin it goes on without them, and the browser
// keeps the response from the calling script. With a list of origins every
// response carries `Vary: Origin`, so a cache never hands one origin's
// answer to another. Put cors() before authentication: preflights carry no
// credentials.
//
// | option         | default              | why                                          |
// |----------------|----------------------|----------------------------------------------|
// | origins        | {} (none)            | cross-origin access is opt-in: list exact    |
// |                |                      | origins ("https://app.example"), or "*" for a|
// |                |                      | public API without credentials               |
// | methods        | GET, HEAD, POST      | the simple methods; PUT, DELETE, … are opened|
// |                |                      | deliberately                                 |
// | allow_headers  | {"Content-Type"}     | what JSON APIs need beyond the safelisted    |
// |                |                      | headers; "*" echoes what the preflight asks  |
// | expose_headers | {}                   | response headers beyond the safelisted ones  |
// |                |                      | that scripts may read                        |
// | credentials    | false                | cookies and auth sent cross-origin turn every|
// |                |                      | allowed origin's XSS into yours; refused with|
// |                |                      | "*" (any site could act as the user)         |
// | max_age        | 600 s                | browsers cache the preflight this long       |
// |                |                      | (Chromium caps it at 2 h); -1: not sent      |
#include <atoll/web/pipeline.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace atl::web {

struct CorsOptions {
  std::vector<std::string> origins;
  std::vector<std::string> methods = {"GET", "HEAD", "POST"};
  std::vector<std::string> allow_headers = {"Content-Type"};
  std::vector<std::string> expose_headers;
  bool credentials = false;
  std::int64_t max_age = 600;
};

/// The CORS middleware. Throws std::invalid_argument for credentials with
/// origin "*", or an origin that is not "scheme://host[:port]" (or "null").
Middleware cors(CorsOptions options);

}  // namespace atl::web
