#include <atoll/web/pipeline.hpp>

namespace atl::web {

App pipeline(std::vector<Middleware> middleware, App app) {
  // Fold from the inside out: each layer holds the next one by value, and
  // passes it by reference, so a request costs one call per layer.
  for (auto it = middleware.rbegin(); it != middleware.rend(); ++it) {
    app = [mw = std::move(*it), next = std::move(app)](Conn& c) { return mw(c, next); };
  }
  return app;
}

Middleware fall_through(App app) {
  return [app = std::move(app)](Conn& c, const App& next) -> Task<> {
    co_await app(c);
    if (!c.response_started()) co_await next(c);
  };
}

}  // namespace atl::web
