// Router: matching, params, precedence, mounts, hosts, 405/OPTIONS, conflicts.
#include <atoll/web/router.hpp>

#include <gtest/gtest.h>

using atl::Task;
using atl::http::Conn;
using atl::web::Router;

namespace {

// Handlers are told apart by identity: each route gets its own App.
atl::http::App tagged() {
  return [](Conn&) -> Task<> { co_return; };
}

struct Probe {
  Router r;
  std::vector<std::pair<std::string_view, std::string>> params;
  Router::Match m;
  const atl::http::App* find(std::string_view method, std::string_view path,
                             std::string_view host = {}) {
    params.clear();
    m = r.match(method, host, path, params);
    return m.handler;
  }
  std::string param(std::string_view name) {
    for (auto& [k, v] : params)
      if (k == name) return v;
    return "<none>";
  }
};

}  // namespace

TEST(Router, StaticParamAndGlob) {
  Probe p;
  p.r.get("/", tagged())
      .get("/users", tagged())
      .get("/users/:id", tagged())
      .get("/files/*path", tagged());
  EXPECT_NE(p.find("GET", "/"), nullptr);
  EXPECT_NE(p.find("GET", "/users"), nullptr);
  ASSERT_NE(p.find("GET", "/users/42"), nullptr);
  EXPECT_EQ(p.param("id"), "42");
  ASSERT_NE(p.find("GET", "/files/a/b/c.txt"), nullptr);
  EXPECT_EQ(p.param("path"), "a/b/c.txt");
  EXPECT_EQ(p.find("GET", "/users/42/extra"), nullptr);
  EXPECT_EQ(p.find("GET", "/nope"), nullptr);
}

TEST(Router, ParamInsideASegment) {
  Probe p;
  p.r.get("/:name.json", tagged()).get("/v:version/status", tagged()).get("/:page", tagged());
  ASSERT_NE(p.find("GET", "/report.json"), nullptr);
  EXPECT_EQ(p.param("name"), "report");
  ASSERT_NE(p.find("GET", "/v2/status"), nullptr);
  EXPECT_EQ(p.param("version"), "2");
  ASSERT_NE(p.find("GET", "/about"), nullptr);
  EXPECT_EQ(p.param("page"), "about");
  EXPECT_EQ(p.param("name"), "<none>");
}

TEST(Router, StaticBeatsParamBeatsGlob) {
  Probe p;
  auto s = tagged(), param = tagged(), glob = tagged();
  p.r.get("/a/new", s).get("/a/:id", param).get("/a/*rest", glob);
  auto* hs = p.find("GET", "/a/new");
  auto* hp = p.find("GET", "/a/7");
  auto* hg = p.find("GET", "/a/7/8");
  ASSERT_TRUE(hs && hp && hg);
  EXPECT_NE(hs, hp);
  EXPECT_NE(hp, hg);
  EXPECT_EQ(p.param("rest"), "7/8");
}

TEST(Router, BacktracksWhenTheStaticBranchDeadEnds) {
  Probe p;
  p.r.get("/a/new/edit", tagged()).get("/a/:id/show", tagged());
  ASSERT_NE(p.find("GET", "/a/new/show"), nullptr);
  EXPECT_EQ(p.param("id"), "new");
}

TEST(Router, HeadIsServedByGetAndOtherMethodsGet405WithAllow) {
  Probe p;
  p.r.get("/x", tagged()).post("/x", tagged());
  EXPECT_NE(p.find("HEAD", "/x"), nullptr);
  EXPECT_EQ(p.find("DELETE", "/x"), nullptr);
  EXPECT_TRUE(p.m.method_mismatch);
  EXPECT_NE(p.m.allow.find("GET"), std::string::npos);
  EXPECT_NE(p.m.allow.find("POST"), std::string::npos);
  EXPECT_NE(p.m.allow.find("HEAD"), std::string::npos);
  EXPECT_NE(p.m.allow.find("OPTIONS"), std::string::npos);
}

TEST(Router, MountKeepsParamsAndPrefixes) {
  Router api;
  api.get("/posts/:post", tagged());
  Probe p;
  p.r.mount("/users/:user", api);
  ASSERT_NE(p.find("GET", "/users/ada/posts/9"), nullptr);
  EXPECT_EQ(p.param("user"), "ada");
  EXPECT_EQ(p.param("post"), "9");
}

TEST(Router, MountedAppGetsTheRestOfThePath) {
  Probe p;
  p.r.mount("/static", tagged()).get("/static/special", tagged());
  ASSERT_NE(p.find("GET", "/static/css/site.css"), nullptr);
  EXPECT_EQ(p.m.path_offset, std::string_view("/static").size());
  EXPECT_NE(p.find("GET", "/static/special"), nullptr);
  EXPECT_EQ(p.m.path_offset, 0u);
}

TEST(Router, HostPatterns) {
  Router api, wild, site;
  auto a = tagged(), w = tagged(), d = tagged();
  api.get("/", a);
  wild.get("/", w);
  Probe p;
  p.r.host("api.example.com", api).host("*.example.com", wild).get("/", d);
  auto* ha = p.find("GET", "/", "API.example.com");  // host names are case-insensitive
  auto* hw = p.find("GET", "/", "blog.example.com");
  auto* hd = p.find("GET", "/", "other.org");
  ASSERT_TRUE(ha && hw && hd);
  EXPECT_NE(ha, hw);
  EXPECT_NE(hw, hd);
  EXPECT_EQ(p.find("GET", "/", "example.com"), hd);  // "*.example.com" needs a subdomain
}

TEST(Router, ConflictsNameBothRoutes) {
  Router r;
  r.get("/users/:id", tagged());
  try {
    r.get("/users/:name", tagged());
    FAIL() << "no conflict reported";
  } catch (const std::invalid_argument& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("/users/:name"), std::string::npos) << what;
    EXPECT_NE(what.find("/users/:id"), std::string::npos) << what;
  }
  r.get("/same", tagged());
  try {
    r.get("/same", tagged());
    FAIL() << "no conflict reported";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("GET /same conflicts with GET /same"), std::string::npos)
        << e.what();
  }
  EXPECT_NO_THROW(r.post("/same", tagged()));
  EXPECT_THROW(r.get("/bad/*rest/more", tagged()), std::invalid_argument);
  EXPECT_THROW(r.get("no-slash", tagged()), std::invalid_argument);
}

TEST(Router, CopiesAreIndependent) {
  Router a;
  a.get("/one", tagged());
  Router b = a;
  b.get("/two", tagged());
  std::vector<std::pair<std::string_view, std::string>> params;
  EXPECT_EQ(a.match("GET", {}, "/two", params).handler, nullptr);
  EXPECT_NE(b.match("GET", {}, "/two", params).handler, nullptr);
}
