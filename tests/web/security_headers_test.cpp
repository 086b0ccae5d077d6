// security_headers: the defaults on a plain HTTP response, HSTS over real
// TLS only, overrides by options and by the handler.
#include <atoll/web/security_headers.hpp>

#include <gtest/gtest.h>

#include "support/tls_client.hpp"
#include "web/middleware_support.hpp"

using namespace atl;
using namespace atl::test;

namespace {

// /own-frame sets its own X-Frame-Options; /no-sniff-off removes nosniff.
Task<> app(http::Conn& c) {
  if (c.path() == "/own-frame") c.set_header("X-Frame-Options", "SAMEORIGIN");
  if (c.path() == "/no-sniff-off") c.response_headers().remove("X-Content-Type-Options");
  co_await c.send(200, "ok\n");
}

}  // namespace

TEST(SecurityHeaders, DefaultsOverHttp) {
  HttpTestServer s(web::pipeline({web::security_headers()}, app));
  auto r = request(s.port(), "GET", "/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("x-content-type-options"), "nosniff");
  EXPECT_EQ(r.header("x-frame-options"), "DENY");
  EXPECT_EQ(r.header("referrer-policy"), "strict-origin-when-cross-origin");
  EXPECT_FALSE(r.has("content-security-policy"));
  EXPECT_FALSE(r.has("strict-transport-security")) << "HSTS over plain HTTP";
}

TEST(SecurityHeaders, HstsOverHttpsOnly) {
  auto app_ = web::pipeline({web::security_headers()}, app);
  net::ServerOptions options{.loops = 1};
  options.tls =
      net::TlsOptions{.cert_file = cert_dir() + "/cert.pem", .key_file = cert_dir() + "/key.pem"};
  HttpTestServer s(app_, {}, options);
  TlsClient client;
  ASSERT_TRUE(client.connect(s.port())) << client.error();
  ASSERT_TRUE(client.send("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
  std::string raw = client.recv(1 << 20);
  auto end = raw.find("\r\n\r\n");
  ASSERT_NE(end, std::string::npos) << raw;
  auto r = parse_head(raw.substr(0, end + 4));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("strict-transport-security"), "max-age=31536000");
  EXPECT_EQ(r.header("x-content-type-options"), "nosniff");
}

TEST(SecurityHeaders, OptionsOverrideAndEmptyTurnsOff) {
  HttpTestServer s(
      web::pipeline({web::security_headers({.frame_options = "",
                                            .referrer_policy = "no-referrer",
                                            .content_security_policy = "default-src 'self'",
                                            .extra = {{"Permissions-Policy", "camera=()"}}})},
                    app));
  auto r = request(s.port(), "GET", "/");
  EXPECT_FALSE(r.has("x-frame-options"));
  EXPECT_EQ(r.header("referrer-policy"), "no-referrer");
  EXPECT_EQ(r.header("content-security-policy"), "default-src 'self'");
  EXPECT_EQ(r.header("permissions-policy"), "camera=()");
  EXPECT_EQ(r.header("x-content-type-options"), "nosniff");
}

TEST(SecurityHeaders, TheHandlerHasTheLastWord) {
  HttpTestServer s(web::pipeline({web::security_headers()}, app));
  auto own = request(s.port(), "GET", "/own-frame");
  EXPECT_EQ(own.header("x-frame-options"), "SAMEORIGIN");
  EXPECT_EQ(own.count("x-frame-options"), 1u);
  EXPECT_FALSE(request(s.port(), "GET", "/no-sniff-off").has("x-content-type-options"));
}

TEST(SecurityHeaders, RefusesHeadersThatCouldNotBeSent) {
  EXPECT_THROW(web::security_headers({.content_security_policy = "a\r\nSet-Cookie: x=1"}),
               std::invalid_argument);
  EXPECT_THROW(web::security_headers({.extra = {{"Bad Name", "x"}}}), std::invalid_argument);
}
