#pragma once
// Health check: one path a load balancer or orchestrator polls.
//
// 200 {"status":"ok"} while serving; 503 {"status":"draining"} once the
// server drains, so the balancer takes this instance out before its
// connections close; 503 {"status":"unavailable"} when `check` says no.
// Other paths are declined (nothing sent), so `fall_through(health())` or
// `health_middleware()` put it in front of an application.
//
// | option | default   | why                                                        |
// |--------|-----------|------------------------------------------------------------|
// | path   | "/health" | the conventional path probes are set up with               |
// | check  | none      | readiness beyond "the process answers" (a database, a     |
// |        |           | cache): must be cheap, probes come every few seconds      |
//
// Always `Cache-Control: no-store`: a cached "ok" from a dead instance is a lie.
// GET and HEAD only; other methods get 405.
#include <atoll/web/pipeline.hpp>

#include <functional>
#include <string>

namespace atl::web {

struct HealthOptions {
  std::string path = "/health";
  std::function<bool()> check;
};

/// Answers `options.path`; declines every other path.
App health(HealthOptions options = {});
/// The same as middleware: other paths go on to `next`.
Middleware health_middleware(HealthOptions options = {});

}  // namespace atl::web
