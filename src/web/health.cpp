#include <atoll/http/exchange.hpp>
#include <atoll/web/health.hpp>

#include <memory>

namespace atl::web {

App health(HealthOptions options) {
  auto opt = std::make_shared<const HealthOptions>(std::move(options));
  return [opt](Conn& c) -> Task<> {
    auto keep = opt;  // the frame holds the options, whatever happens to the closure
    if (c.path() != keep->path) co_return;
    c.set_header("Cache-Control", "no-store");
    if (c.method() != "GET" && c.method() != "HEAD") {
      c.set_header("Allow", "GET, HEAD");
      c.set_header("Content-Type", "text/plain; charset=utf-8");
      co_await http::send_error(c, 405,
                                http::error_line(405, "the health check answers GET and HEAD"));
      co_return;
    }
    c.set_header("Content-Type", "application/json");
    if (c.draining()) {
      // Answering while draining is the point: the balancer learns it now.
      co_await c.send(503, R"({"status":"draining"})");
    } else if (keep->check && !keep->check()) {
      co_await c.send(503, R"({"status":"unavailable"})");
    } else {
      co_await c.send(200, R"({"status":"ok"})");
    }
  };
}

Middleware health_middleware(HealthOptions options) {
  return fall_through(health(std::move(options)));
}

}  // namespace atl::web
