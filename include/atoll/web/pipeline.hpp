#pragma once
// Middleware and pipelines: Plug's onion for C++.
//
// A middleware gets the Conn and the rest of the pipeline (`next`). It may
// act before calling next, after it returns, or not call it at all (halt).
// A pipeline is an App, so pipelines nest and mount like any handler.
#include <atoll/http/conn.hpp>

#include <functional>
#include <vector>

namespace atl::web {

using http::App;
using http::Conn;

/// A middleware: `co_await next(c)` runs the rest of the pipeline.
using Middleware = std::function<Task<>(Conn&, const App& next)>;

/// Composes `middleware` (outermost first) around `app`.
App pipeline(std::vector<Middleware> middleware, App app);

/// Turns an App that may decline (returns without sending) into middleware
/// that falls through to `next` when it declined.
Middleware fall_through(App app);

}  // namespace atl::web
