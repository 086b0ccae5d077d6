#pragma once
// Router: method + path (+ host) → handler.
//
// Patterns are split on '/'; each segment is static ("users"), a parameter
// (":id"), a parameter inside a segment (":name.json", "v:version"), or a glob
// ("*rest", last only). Matching walks one tree node per segment with a hash
// lookup for static segments, so its cost grows with the path's depth, not
// with the number of routes. Static beats parameter beats glob.
//
// - HEAD is served by GET routes (the body is dropped by the protocol layer).
// - A path that matches with another method gets 405 and an Allow header;
//   OPTIONS gets 204 and Allow unless a route handles it.
// - mount(prefix, router) adds the router's routes under the prefix (its
//   params are kept); mount(prefix, app) hands the rest of the path to an App
//   (Conn::path_offset says where its part begins).
// - host("*.example.com", router) sends requests for those hosts to a router
//   of their own; exact names win over wildcards.
// - Conflicting routes (same method and shape, or one parameter position
//   with two names) throw std::invalid_argument naming both, when added.
// Routes match the percent-decoded path.
#include <atoll/web/pipeline.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace atl::web {

class Router {
 public:
  Router();
  ~Router();
  Router(const Router&);
  Router& operator=(const Router&);
  Router(Router&&) noexcept;
  Router& operator=(Router&&) noexcept;

  Router& route(std::string_view method, std::string_view pattern, App handler);
  Router& get(std::string_view p, App h) { return route("GET", p, std::move(h)); }
  Router& post(std::string_view p, App h) { return route("POST", p, std::move(h)); }
  Router& put(std::string_view p, App h) { return route("PUT", p, std::move(h)); }
  Router& patch(std::string_view p, App h) { return route("PATCH", p, std::move(h)); }
  Router& del(std::string_view p, App h) { return route("DELETE", p, std::move(h)); }
  Router& options(std::string_view p, App h) { return route("OPTIONS", p, std::move(h)); }

  Router& mount(std::string_view prefix, const Router& router);
  Router& mount(std::string_view prefix, App app);
  Router& host(std::string_view pattern, const Router& router);
  /// What unmatched paths get (default: a plain 404).
  Router& fallback(App app);

  /// The router as an App (a snapshot: later changes do not affect it).
  operator App() const;  // NOLINT: a Router is used wherever an App is
  App app() const { return *this; }

  /// The match for a request, for tests and benchmarks: the handler (or
  /// nullptr), with params filled in and `allow` listing methods on a 405.
  struct Match {
    const App* handler = nullptr;
    std::size_t path_offset = 0;
    bool method_mismatch = false;
    std::string allow;
  };
  Match match(std::string_view method, std::string_view host, std::string_view path,
              std::vector<std::pair<std::string_view, std::string>>& params) const;

  struct Tree;

 private:
  std::shared_ptr<Tree> tree_;
  void own();  // copy-on-write before a change
};

}  // namespace atl::web
