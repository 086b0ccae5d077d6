// basic_auth: the 401 challenge, right and wrong credentials, malformed
// headers, the verify hook, and the user handed to the handler.
#include <atoll/web/basic_auth.hpp>

#include <gtest/gtest.h>

#include "web/middleware_support.hpp"

using namespace atl;
using namespace atl::test;

namespace {

Task<> app(http::Conn& c) {
  // (No ?: with string temporaries in a coroutine: GCC 12 destroys them twice.)
  std::string name = "?";
  if (auto* user = c.find_assign<web::AuthenticatedUser>()) name = user->name;
  co_await c.send(200, "hello " + name + "\n");
}

std::string base64(const std::string& in) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned bits = 0;
  int count = 0;
  for (unsigned char c : in) {
    bits = (bits << 8) | c;
    count += 8;
    while (count >= 6) {
      count -= 6;
      out += table[(bits >> count) & 63];
    }
  }
  if (count) out += table[(bits << (6 - count)) & 63];
  while (out.size() % 4) out += '=';
  return out;
}

HttpReply get(std::uint16_t port, const std::string& authorization) {
  std::vector<std::string> h;
  if (!authorization.empty()) h.push_back("Authorization: " + authorization);
  return request(port, "GET", "/", h);
}

struct Server : HttpTestServer {
  Server()
      : HttpTestServer(web::pipeline(
            {web::basic_auth({.realm = "the \"back\" office",
                              .users = {{"ada", "lovelace"}, {"grace", "pa:ss wörd"}}})},
            app)) {}
};

}  // namespace

TEST(BasicAuth, NoCredentialsGet401WithAChallenge) {
  Server s;
  auto r = get(s.port(), "");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.header("www-authenticate"),
            "Basic realm=\"the \\\"back\\\" office\", charset=\"UTF-8\"");
  EXPECT_EQ(r.body, "Unauthorized: credentials required\n");
  EXPECT_EQ(get(s.port(), "Bearer abc").status, 401);
}

TEST(BasicAuth, RightCredentialsPass) {
  Server s;
  auto r = get(s.port(), "Basic " + base64("ada:lovelace"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "hello ada\n");
  // The password may hold ':' and UTF-8; the scheme is case-insensitive.
  EXPECT_EQ(get(s.port(), "basic " + base64("grace:pa:ss wörd")).body, "hello grace\n");
}

TEST(BasicAuth, WrongCredentialsGet401) {
  Server s;
  for (const char* pair : {"ada:Lovelace", "ada:", "ada:lovelace ", "Ada:lovelace",
                           "grace:lovelace", ":", "nobody:x"}) {
    auto r = get(s.port(), "Basic " + base64(pair));
    EXPECT_EQ(r.status, 401) << pair;
    EXPECT_EQ(r.body, "Unauthorized: wrong user name or password\n") << pair;
    EXPECT_TRUE(r.has("www-authenticate"));
  }
}

TEST(BasicAuth, MalformedCredentialsGet401) {
  Server s;
  for (const std::string& h :
       std::vector<std::string>{"Basic !!!!", "Basic " + base64("no colon"), "Basic", "Basic a"}) {
    auto r = get(s.port(), h);
    EXPECT_EQ(r.status, 401) << h;
    EXPECT_TRUE(r.has("www-authenticate"));
  }
  EXPECT_EQ(get(s.port(), "Basic !!!!").body,
            "Unauthorized: malformed Basic credentials (expected base64 of user:password)\n");
}

TEST(BasicAuth, AVerifyFunctionInstead) {
  HttpTestServer s(web::pipeline(
      {web::basic_auth({.verify = [](std::string_view u,
                                     std::string_view p) { return u == "svc" && p == "token"; }})},
      app));
  EXPECT_EQ(get(s.port(), "Basic " + base64("svc:token")).body, "hello svc\n");
  EXPECT_EQ(get(s.port(), "Basic " + base64("svc:nope")).status, 401);
  EXPECT_EQ(get(s.port(), "").header("www-authenticate"),
            "Basic realm=\"restricted\", charset=\"UTF-8\"");
}

TEST(BasicAuth, RefusesAGateNobodyCanPass) {
  EXPECT_THROW(web::basic_auth({}), std::invalid_argument);
  EXPECT_THROW(web::basic_auth({.users = {{"a:b", "c"}}}), std::invalid_argument);
  EXPECT_THROW(web::basic_auth({.realm = "a\nb", .users = {{"a", "b"}}}), std::invalid_argument);
}
