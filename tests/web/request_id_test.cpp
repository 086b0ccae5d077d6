// request id: a sane incoming id is kept, anything else is replaced by a
// fresh one; the id reaches the handler, the response, and 500 pages.
#include <atoll/web/request_id.hpp>

#include <gtest/gtest.h>

#include <set>

#include "web/middleware_support.hpp"

using namespace atl;
using namespace atl::test;

namespace {

Task<> echo_id(http::Conn& c) { co_await c.send(200, c.request_id); }
Task<> fail(http::Conn&) {
  throw std::runtime_error("boom");
  co_return;
}

std::string get(const std::string& path, const std::string& extra = "") {
  return "GET " + path + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" + extra + "\r\n";
}

}  // namespace

TEST(RequestId, AGeneratedIdIsReturnedAndUnique) {
  HttpTestServer server(web::pipeline({web::request_id()}, echo_id));
  std::set<std::string> seen;
  for (int i = 0; i < 20; ++i) {
    auto r = http_exchange(server.port(), get("/"));
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.header("x-request-id"), r.body);
    EXPECT_TRUE(web::is_sane_request_id(r.body)) << r.body;
    EXPECT_EQ(r.body.size(), 20u);
    seen.insert(r.body);
  }
  EXPECT_EQ(seen.size(), 20u);
}

TEST(RequestId, ASaneIncomingIdIsKept) {
  HttpTestServer server(web::pipeline({web::request_id()}, echo_id));
  auto r = http_exchange(server.port(), get("/", "X-Request-Id: trace-42.abc:1\r\n"));
  EXPECT_EQ(r.body, "trace-42.abc:1");
  EXPECT_EQ(r.header("x-request-id"), "trace-42.abc:1");
}

TEST(RequestId, AnInsaneIncomingIdIsReplaced) {
  HttpTestServer server(web::pipeline({web::request_id()}, echo_id));
  for (std::string bad : {std::string("has space"), std::string(200, 'a'), std::string("quote\"d"),
                          std::string("semi;colon")}) {
    auto r = http_exchange(server.port(), get("/", "X-Request-Id: " + bad + "\r\n"));
    EXPECT_NE(r.body, bad);
    EXPECT_TRUE(web::is_sane_request_id(r.body)) << r.body;
  }
}

TEST(RequestId, UntrustedIncomingIdsAreIgnored) {
  HttpTestServer server(web::pipeline({web::request_id({.trust_incoming = false})}, echo_id));
  auto r = http_exchange(server.port(), get("/", "X-Request-Id: mine\r\n"));
  EXPECT_NE(r.body, "mine");
}

TEST(RequestId, TheIdIsOnTheErrorPage) {
  HttpTestServer server(web::pipeline({web::request_id()}, fail));
  auto r = http_exchange(server.port(), get("/", "X-Request-Id: err-7\r\n"));
  EXPECT_EQ(r.status, 500);
  EXPECT_NE(r.body.find("err-7"), std::string::npos) << r.body;
}
