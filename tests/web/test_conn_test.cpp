// Middleware and a router unit-tested through http::TestConn: no socket.
#include <atoll/http/test_conn.hpp>
#include <atoll/web/pipeline.hpp>
#include <atoll/web/request_id.hpp>
#include <atoll/web/router.hpp>

#include <gtest/gtest.h>

using atl::Task;
using atl::http::Conn;
using atl::http::TestConn;

namespace {

atl::http::App app() {
  atl::web::Router r;
  r.get("/users/:id", [](Conn& c) -> Task<> {
    c.set_header("Content-Type", "text/plain");
    co_await c.send(200, "user " + std::string(c.param("id")));
  });
  return atl::web::pipeline({atl::web::request_id()}, r);
}

}  // namespace

TEST(TestConnWeb, ARouteWithParamsAndARequestId) {
  TestConn c("GET", "/users/42");
  c.run(app());
  EXPECT_EQ(c.status(), 200);
  EXPECT_EQ(c.response_body(), "user 42");
  EXPECT_EQ(c.response_header("X-Request-Id").size(), 20u);
}

TEST(TestConnWeb, TheRoutersRefusals) {
  TestConn missing("GET", "/nope");
  missing.run(app());
  EXPECT_EQ(missing.status(), 404);
  TestConn wrong("DELETE", "/users/42");
  wrong.run(app());
  EXPECT_EQ(wrong.status(), 405);
  EXPECT_NE(wrong.response_header("Allow").find("GET"), std::string::npos);
}

TEST(TestConnWeb, ASaneIncomingRequestIdIsKept) {
  TestConn c("GET", "/users/1");
  c.with_header("X-Request-Id", "from-the-edge-1234");
  c.run(app());
  EXPECT_EQ(c.response_header("X-Request-Id"), "from-the-edge-1234");
}
