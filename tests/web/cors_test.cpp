// cors: preflights answered with 204 (or 403), actual requests marked for
// allowed origins only, Vary: Origin, credentials, and refused configurations.
#include <atoll/web/cors.hpp>

#include <gtest/gtest.h>

#include "web/middleware_support.hpp"

using namespace atl;
using namespace atl::test;

namespace {

Task<> app(http::Conn& c) {
  c.set_header("X-Total", "3");
  co_await c.send(200, "data from " + std::string(c.method()) + "\n");
}

HttpReply preflight(std::uint16_t port, const std::string& origin,
                    const std::string& method = "PUT",
                    const std::string& headers = "content-type, x-token") {
  std::vector<std::string> h = {"Origin: " + origin, "Access-Control-Request-Method: " + method};
  if (!headers.empty()) h.push_back("Access-Control-Request-Headers: " + headers);
  return request(port, "OPTIONS", "/api", h);
}

}  // namespace

TEST(Cors, PreflightFromAnAllowedOrigin) {
  HttpTestServer s(
      web::pipeline({web::cors({.origins = {"https://app.example", "http://localhost:3000"},
                                .methods = {"GET", "PUT", "DELETE"},
                                .allow_headers = {"Content-Type", "X-Token"},
                                .max_age = 3600})},
                    app));
  auto r = preflight(s.port(), "http://localhost:3000");
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(r.header("access-control-allow-origin"), "http://localhost:3000");
  EXPECT_EQ(r.header("access-control-allow-methods"), "GET, PUT, DELETE");
  EXPECT_EQ(r.header("access-control-allow-headers"), "Content-Type, X-Token");
  EXPECT_EQ(r.header("access-control-max-age"), "3600");
  EXPECT_EQ(r.header("vary"), "Origin");
  EXPECT_FALSE(r.has("access-control-allow-credentials"));
  EXPECT_EQ(r.body, "");
}

TEST(Cors, PreflightFromAnotherOriginIs403) {
  HttpTestServer s(web::pipeline({web::cors({.origins = {"https://app.example"}})}, app));
  auto r = preflight(s.port(), "https://evil.example");
  EXPECT_EQ(r.status, 403);
  EXPECT_FALSE(r.has("access-control-allow-origin"));
  // A prefix or suffix of an allowed origin is another origin.
  EXPECT_EQ(preflight(s.port(), "https://app.example.evil").status, 403);
  EXPECT_EQ(preflight(s.port(), "http://app.example").status, 403);
}

TEST(Cors, ActualRequests) {
  HttpTestServer s(web::pipeline(
      {web::cors({.origins = {"https://app.example"}, .expose_headers = {"X-Total"}})}, app));
  auto ok = request(s.port(), "GET", "/api", {"Origin: https://app.example"});
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, "data from GET\n");
  EXPECT_EQ(ok.header("access-control-allow-origin"), "https://app.example");
  EXPECT_EQ(ok.header("access-control-expose-headers"), "X-Total");
  EXPECT_EQ(ok.header("vary"), "Origin");

  auto other = request(s.port(), "GET", "/api", {"Origin: https://evil.example"});
  EXPECT_EQ(other.status, 200);  // the browser, not the server, withholds it
  EXPECT_FALSE(other.has("access-control-allow-origin"));
  EXPECT_EQ(other.header("vary"), "Origin");

  auto same_origin = request(s.port(), "GET", "/api");
  EXPECT_EQ(same_origin.body, "data from GET\n");
  EXPECT_FALSE(same_origin.has("access-control-allow-origin"));
  EXPECT_EQ(same_origin.header("vary"), "Origin");

  // A plain OPTIONS (no Access-Control-Request-Method) is the app's.
  auto options = request(s.port(), "OPTIONS", "/api", {"Origin: https://app.example"});
  EXPECT_EQ(options.body, "data from OPTIONS\n");
}

TEST(Cors, AnyOrigin) {
  HttpTestServer s(web::pipeline({web::cors({.origins = {"*"}, .allow_headers = {"*"}})}, app));
  auto r = request(s.port(), "GET", "/api", {"Origin: https://anyone.example"});
  EXPECT_EQ(r.header("access-control-allow-origin"), "*");
  EXPECT_FALSE(r.has("vary"));
  auto p = preflight(s.port(), "https://anyone.example", "POST", "x-custom, content-type");
  EXPECT_EQ(p.status, 204);
  EXPECT_EQ(p.header("access-control-allow-origin"), "*");
  EXPECT_EQ(p.header("access-control-allow-headers"), "x-custom, content-type");
  EXPECT_EQ(p.header("access-control-max-age"), "600");
}

TEST(Cors, Credentials) {
  HttpTestServer s(web::pipeline(
      {web::cors({.origins = {"https://app.example"}, .credentials = true, .max_age = -1})}, app));
  auto r = request(s.port(), "GET", "/api", {"Origin: https://app.example", "Cookie: session=1"});
  EXPECT_EQ(r.header("access-control-allow-origin"), "https://app.example");
  EXPECT_EQ(r.header("access-control-allow-credentials"), "true");
  auto p = preflight(s.port(), "https://app.example", "POST");
  EXPECT_EQ(p.header("access-control-allow-credentials"), "true");
  EXPECT_FALSE(p.has("access-control-max-age"));
}

TEST(Cors, RefusesDangerousOrUselessConfigurations) {
  EXPECT_THROW(web::cors({.origins = {"*"}, .credentials = true}), std::invalid_argument);
  EXPECT_THROW(web::cors({.origins = {"https://app.example/"}}), std::invalid_argument);
  EXPECT_THROW(web::cors({.origins = {"app.example"}}), std::invalid_argument);
  EXPECT_NO_THROW(web::cors({.origins = {"null", "http://127.0.0.1:8080"}}));
}
