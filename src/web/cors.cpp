#include <atoll/http/exchange.hpp>
#include <atoll/web/cors.hpp>

#include <memory>
#include <stdexcept>

namespace atl::web {

namespace {

using http::iequals;

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

// An origin as browsers serialise it: scheme "://" host [":" port], with no
// path and no trailing slash (a common typo that would never match).
bool valid_origin(std::string_view o) noexcept {
  if (o == "null") return true;
  auto sep = o.find("://");
  if (sep == std::string_view::npos || sep == 0) return false;
  std::string_view authority = o.substr(sep + 3);
  return !authority.empty() && authority.find_first_of("/?#") == std::string_view::npos;
}

struct Policy {
  std::vector<std::string> origins;
  bool any = false;
  std::string methods;
  std::string allow_headers;
  bool echo_headers = false;
  std::string expose_headers;
  bool credentials = false;
  std::string max_age;

  bool allows(std::string_view origin) const noexcept {
    if (any) return true;
    for (const auto& o : origins)
      if (iequals(o, origin)) return true;
    return false;
  }
  // The credential and origin headers every allowed response carries.
  void allow(Conn& c, std::string_view origin) const {
    c.set_header("Access-Control-Allow-Origin",
                 any && !credentials ? std::string_view("*") : origin);
    if (credentials) c.set_header("Access-Control-Allow-Credentials", "true");
  }
};

}  // namespace

Middleware cors(CorsOptions options) {
  auto p = std::make_shared<Policy>();
  for (auto& o : options.origins) {
    if (o == "*") {
      p->any = true;
      continue;
    }
    if (!valid_origin(o))
      throw std::invalid_argument("cors: origin '" + o +
                                  "' is not scheme://host[:port] (no path, no trailing slash)");
    p->origins.push_back(o);
  }
  if (p->any && options.credentials)
    throw std::invalid_argument(
        "cors: credentials with origin \"*\" would let any site act as the user; list the origins");
  p->methods = join(options.methods);
  for (const auto& h : options.allow_headers) p->echo_headers |= h == "*";
  p->allow_headers = join(options.allow_headers);
  p->expose_headers = join(options.expose_headers);
  p->credentials = options.credentials;
  if (options.max_age >= 0) p->max_age = std::to_string(options.max_age);
  // Refuse now what would be refused on every request.
  http::validate_header("Access-Control-Allow-Methods", p->methods);
  http::validate_header("Access-Control-Allow-Headers", p->allow_headers);
  http::validate_header("Access-Control-Expose-Headers", p->expose_headers);

  return [policy = std::shared_ptr<const Policy>(p)](Conn& c, const App& next) -> Task<> {
    auto keep = policy;  // the frame holds the policy, whatever happens to the closure
    // With a list, the answer depends on Origin even when there is none.
    if (!keep->any) c.response_headers().append_token("Vary", "Origin");
    std::string_view origin = c.header("origin");
    if (origin.empty()) {
      co_await next(c);
      co_return;
    }
    bool allowed = keep->allows(origin);
    if (c.method() == "OPTIONS" && c.headers().has("access-control-request-method")) {
      if (!allowed) {
        c.set_header("Content-Type", "text/plain; charset=utf-8");
        co_await http::send_error(
            c, 403, http::error_line(403, "this origin may not make cross-origin requests here"));
        co_return;
      }
      keep->allow(c, origin);
      if (!keep->methods.empty()) c.set_header("Access-Control-Allow-Methods", keep->methods);
      std::string_view asked = c.header("access-control-request-headers");
      if (keep->echo_headers && !asked.empty())
        c.set_header("Access-Control-Allow-Headers", asked);
      else if (!keep->allow_headers.empty())
        c.set_header("Access-Control-Allow-Headers", keep->allow_headers);
      if (!keep->max_age.empty()) c.set_header("Access-Control-Max-Age", keep->max_age);
      co_await c.send(204, "");
      co_return;
    }
    if (allowed) {
      keep->allow(c, origin);
      if (!keep->expose_headers.empty())
        c.set_header("Access-Control-Expose-Headers", keep->expose_headers);
    }
    co_await next(c);
  };
}

}  // namespace atl::web
