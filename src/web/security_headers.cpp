#include <atoll/web/security_headers.hpp>

#include <memory>

namespace atl::web {

namespace {

struct Headers {
  std::vector<std::pair<std::string, std::string>> always;
  std::string hsts;  // only over HTTPS
};

}  // namespace

Middleware security_headers(SecurityHeadersOptions options) {
  auto h = std::make_shared<Headers>();
  auto add = [&](std::string name, std::string value) {
    if (value.empty()) return;
    http::validate_header(name, value);  // refused now, not on every request
    h->always.emplace_back(std::move(name), std::move(value));
  };
  add("X-Content-Type-Options", std::move(options.content_type_options));
  add("X-Frame-Options", std::move(options.frame_options));
  add("Referrer-Policy", std::move(options.referrer_policy));
  add("Content-Security-Policy", std::move(options.content_security_policy));
  for (auto& [name, value] : options.extra) add(std::move(name), std::move(value));
  if (!options.strict_transport_security.empty())
    http::validate_header("Strict-Transport-Security", options.strict_transport_security);
  h->hsts = std::move(options.strict_transport_security);

  return [headers = std::shared_ptr<const Headers>(h)](Conn& c, const App& next) -> Task<> {
    auto keep = headers;  // the frame holds the headers, whatever happens to the closure
    for (const auto& [name, value] : keep->always) c.set_header(name, value);
    if (!keep->hsts.empty() && c.scheme() == "https")
      c.set_header("Strict-Transport-Security", keep->hsts);
    co_await next(c);
  };
}

}  // namespace atl::web
