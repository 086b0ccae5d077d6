// The SQLite database: sites, atomic deploys, rollback, changed paths, prune,
// and the site name rule. Real database files in a temporary directory.
#include <atoll/host/database.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>

#include "host/temp_dir.hpp"

using namespace atl;
using namespace atl::test;
using host::DbError;
using host::FileRecord;

namespace {

FileRecord file(std::string path, std::string hash_of, std::string br = "") {
  FileRecord r;
  r.path = std::move(path);
  r.hash = std::string(64, 'a');
  // Distinct, valid-looking digests per content.
  static const char hex[] = "0123456789abcdef";
  std::size_t seed = std::hash<std::string>{}(hash_of);
  for (auto& c : r.hash) {
    c = hex[seed & 15];
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
  }
  r.size = hash_of.size();
  r.mime = "text/html; charset=utf-8";
  if (!br.empty()) {
    r.br = br;
    r.br_size = 3;
  }
  return r;
}

std::set<std::string> as_set(const std::vector<std::string>& v) { return {v.begin(), v.end()}; }

DbError::Kind kind_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const DbError& e) {
    return e.kind();
  }
  ADD_FAILURE() << "expected a DbError";
  return DbError::Kind::unavailable;
}

class DatabaseTest : public ::testing::Test {
 protected:
  TempDir dir;
  std::unique_ptr<host::Database> db = host::open_sqlite(dir / "atoll.db");
};

}  // namespace

// --- the site name rule ---------------------------------------------------------------

TEST(SiteName, AcceptsDnsLabels) {
  for (const char* name : {"a", "demo", "my-site", "0", "a1-b2", "x-y-z"})
    EXPECT_EQ(host::site_name_error(name), "") << name;
  EXPECT_EQ(host::site_name_error(std::string(63, 'a')), "");
}

TEST(SiteName, RefusesEverythingElseNamingTheRule) {
  for (std::string name :
       {std::string(""), std::string(64, 'a'), std::string("-a"), std::string("a-"),
        std::string("Demo"), std::string("my_site"), std::string("a.b"), std::string("a b"),
        std::string("caf\xc3\xa9"), std::string("../x"), std::string("a/b")}) {
    std::string e = host::site_name_error(name);
    EXPECT_NE(e.find("1-63 characters of a-z, 0-9 and '-'"), std::string::npos)
        << name << ": " << e;
    EXPECT_NE(e.find("not starting or ending with '-'"), std::string::npos) << e;
  }
}

TEST_F(DatabaseTest, InvalidNamesAreRefusedEverywhere) {
  EXPECT_EQ(kind_of([&] { db->create_site("Bad_Name", {}); }), DbError::Kind::invalid);
  EXPECT_EQ(kind_of([&] { db->create_deploy("-bad", {file("index.html", "x")}, "{}"); }),
            DbError::Kind::invalid);
  EXPECT_TRUE(db->sites().empty());
  try {
    db->create_site("Bad_Name", {});
  } catch (const DbError& e) {
    EXPECT_NE(std::string(e.what()).find("'Bad_Name'"), std::string::npos) << e.what();
  }
}

// --- sites --------------------------------------------------------------------------------

TEST_F(DatabaseTest, CreateListAndFindSites) {
  auto s = db->create_site("beta", {"beta.example.com", "www.beta.example.com"});
  EXPECT_EQ(s.name, "beta");
  EXPECT_FALSE(s.live_deploy);
  EXPECT_EQ(s.config_json, "{}");
  db->create_site("alpha", {});
  auto all = db->sites();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name, "alpha");  // by name
  EXPECT_EQ(all[1].name, "beta");
  EXPECT_EQ(all[1].domains, (std::vector<std::string>{"beta.example.com", "www.beta.example.com"}));
  EXPECT_TRUE(db->site("alpha"));
  EXPECT_FALSE(db->site("gamma"));
}

TEST_F(DatabaseTest, DuplicateSiteIsAConflict) {
  db->create_site("demo", {});
  try {
    db->create_site("demo", {});
    FAIL();
  } catch (const DbError& e) {
    EXPECT_EQ(e.kind(), DbError::Kind::conflict);
    EXPECT_NE(std::string(e.what()).find("already exists"), std::string::npos);
  }
}

TEST_F(DatabaseTest, SetDomainsAndDeleteSite) {
  db->create_site("demo", {});
  db->set_domains("demo", {"demo.example.org"});
  EXPECT_EQ(db->site("demo")->domains, std::vector<std::string>{"demo.example.org"});
  EXPECT_EQ(kind_of([&] { db->set_domains("nope", {}); }), DbError::Kind::not_found);
  db->create_deploy("demo", {file("index.html", "v1")}, "{}");
  EXPECT_TRUE(db->delete_site("demo"));
  EXPECT_FALSE(db->delete_site("demo"));
  EXPECT_FALSE(db->site("demo"));
  EXPECT_TRUE(db->referenced_hashes().empty()) << "a deleted site's deploys and files go with it";
}

TEST_F(DatabaseTest, GenerationMovesWithEveryChange) {
  auto g0 = db->generation();
  db->create_site("demo", {});
  auto g1 = db->generation();
  EXPECT_GT(g1, g0);
  auto d1 = db->create_deploy("demo", {file("index.html", "v1")}, "{}");
  auto g2 = db->generation();
  EXPECT_GT(g2, g1);
  db->create_deploy("demo", {file("index.html", "v2")}, "{}");
  db->rollback("demo", d1);
  EXPECT_GT(db->generation(), g2);
  // Reads do not move it.
  auto g3 = db->generation();
  db->sites();
  db->resolve(d1, "index.html");
  EXPECT_EQ(db->generation(), g3);
}

// --- deploys --------------------------------------------------------------------------------

TEST_F(DatabaseTest, DeployCreatesTheSiteAndGoesLive) {
  auto id = db->create_deploy("demo", {file("index.html", "v1"), file("a/b.css", "css")},
                              R"({"spa":"index.html"})");
  auto s = db->site("demo");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->live_deploy, id);
  EXPECT_EQ(s->config_json, R"({"spa":"index.html"})");
  auto r = db->resolve(id, "a/b.css");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->hash, file("a/b.css", "css").hash);
  EXPECT_EQ(r->size, 3u);
  EXPECT_FALSE(db->resolve(id, "missing.html"));
  EXPECT_FALSE(db->resolve(id, "/a/b.css")) << "paths are stored without a leading '/'";
  EXPECT_FALSE(db->resolve(id + 1000, "a/b.css"));
}

TEST_F(DatabaseTest, ResolveReturnsVariants) {
  auto rec = file("app.js", "js", std::string(64, 'b'));
  rec.gz = std::string(64, 'c');
  rec.gz_size = 7;
  auto id = db->create_deploy("demo", {rec}, "{}");
  auto r = db->resolve(id, "app.js");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->br, std::string(64, 'b'));
  EXPECT_EQ(r->br_size, 3u);
  EXPECT_EQ(r->zst, "");
  EXPECT_EQ(r->gz, std::string(64, 'c'));
  EXPECT_EQ(r->gz_size, 7u);
  EXPECT_EQ(r->mime, "text/html; charset=utf-8");
}

TEST_F(DatabaseTest, DeploysAreListedNewestFirstWithTheLiveOneMarked) {
  auto d1 = db->create_deploy("demo", {file("index.html", "v1")}, "{}");
  auto d2 = db->create_deploy("demo", {file("index.html", "v22"), file("x.css", "x")}, "{}");
  auto list = db->deploys("demo");
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id, d2);
  EXPECT_TRUE(list[0].live);
  EXPECT_EQ(list[0].files, 2);
  EXPECT_EQ(list[0].bytes, 4u);
  EXPECT_EQ(list[1].id, d1);
  EXPECT_FALSE(list[1].live);
  EXPECT_EQ(kind_of([&] { db->deploys("nope"); }), DbError::Kind::not_found);
}

// A deploy that fails part way (a path twice) leaves no trace: no deploy
// row, no files, the old deploy still live, the generation unchanged.
TEST_F(DatabaseTest, AFailedDeployChangesNothing) {
  auto d1 = db->create_deploy("demo", {file("index.html", "v1")}, "{}");
  auto gen = db->generation();
  auto hashes = as_set(db->referenced_hashes());
  try {
    db->create_deploy(
        "demo", {file("index.html", "v2"), file("new.css", "n"), file("index.html", "v3")}, "{}");
    FAIL() << "expected an error";
  } catch (const DbError& e) {
    EXPECT_EQ(e.kind(), DbError::Kind::invalid);
    EXPECT_NE(std::string(e.what()).find("'index.html' appears twice"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(db->site("demo")->live_deploy, d1);
  EXPECT_EQ(db->deploys("demo").size(), 1u);
  EXPECT_EQ(db->generation(), gen);
  EXPECT_EQ(as_set(db->referenced_hashes()), hashes);
  // The database is still usable after the rollback of that transaction.
  auto d2 = db->create_deploy("demo", {file("index.html", "v2")}, "{}");
  EXPECT_EQ(db->site("demo")->live_deploy, d2);
}

TEST_F(DatabaseTest, AFailedFirstDeployDoesNotCreateTheSite) {
  EXPECT_EQ(kind_of([&] {
              db->create_deploy("fresh", {file("a", "1"), file("a", "2")}, "{}");
            }),
            DbError::Kind::invalid);
  EXPECT_FALSE(db->site("fresh"));
}

// Another connection (as another process would) reading while deploys land:
// whichever deploy it sees live, every file of that deploy is there.
TEST_F(DatabaseTest, ReadersSeeWholeDeploys) {
  constexpr int files_per_deploy = 40;
  auto deploy_of = [](int v) {
    std::vector<FileRecord> files;
    for (int i = 0; i < files_per_deploy; ++i)
      files.push_back(file("f" + std::to_string(i) + ".html",
                           "v" + std::to_string(v) + "/" + std::to_string(i)));
    return files;
  };
  db->create_deploy("demo", deploy_of(0), "{}");
  auto reader = host::open_sqlite(dir / "atoll.db");
  std::atomic<bool> done{false};
  std::atomic<int> torn{0}, checks{0};
  std::thread t([&] {
    while (!done.load()) {
      auto s = reader->site("demo");
      if (!s || !s->live_deploy) {
        ++torn;
        continue;
      }
      for (int i = 0; i < files_per_deploy; ++i)
        if (!reader->resolve(*s->live_deploy, "f" + std::to_string(i) + ".html")) ++torn;
      ++checks;
    }
  });
  for (int v = 1; v <= 30; ++v) db->create_deploy("demo", deploy_of(v), "{}");
  done = true;
  t.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_GT(checks.load(), 0);
}

TEST_F(DatabaseTest, AnotherConnectionSeesTheChange) {
  auto other = host::open_sqlite(dir / "atoll.db");
  auto g = other->generation();
  auto id = db->create_deploy("demo", {file("index.html", "v1")}, "{}");
  EXPECT_GT(other->generation(), g);
  EXPECT_EQ(other->site("demo")->live_deploy, id);
}

TEST_F(DatabaseTest, ContentSurvivesReopening) {
  auto id = db->create_deploy("demo", {file("index.html", "v1")}, R"({"not_found":"404.html"})");
  db.reset();
  auto again = host::open_sqlite(dir / "atoll.db");
  EXPECT_EQ(again->site("demo")->live_deploy, id);
  EXPECT_EQ(again->site("demo")->config_json, R"({"not_found":"404.html"})");
  EXPECT_TRUE(again->resolve(id, "index.html"));
}

// --- rollback ------------------------------------------------------------------------------

TEST_F(DatabaseTest, RollbackDefaultsToTheDeployBeforeTheLiveOne) {
  auto d1 = db->create_deploy("demo", {file("index.html", "v1")}, "{}");
  auto d2 = db->create_deploy("demo", {file("index.html", "v2")}, "{}");
  auto d3 = db->create_deploy("demo", {file("index.html", "v3")}, "{}");
  EXPECT_EQ(db->rollback("demo", std::nullopt), d2);
  EXPECT_EQ(db->site("demo")->live_deploy, d2);
  // Again: the one before the now-live deploy, not d2 again.
  EXPECT_EQ(db->rollback("demo", std::nullopt), d1);
  EXPECT_EQ(db->site("demo")->live_deploy, d1);
  try {
    db->rollback("demo", std::nullopt);
    FAIL();
  } catch (const DbError& e) {
    EXPECT_EQ(e.kind(), DbError::Kind::not_found);
    EXPECT_NE(std::string(e.what()).find("no earlier deploy"), std::string::npos) << e.what();
  }
  EXPECT_EQ(db->site("demo")->live_deploy, d1);
  EXPECT_EQ(db->deploys("demo").size(), 3u) << "rollback deletes nothing";
  (void)d3;
}

TEST_F(DatabaseTest, RollbackToAChosenDeploy) {
  auto d1 = db->create_deploy("demo", {file("index.html", "v1")}, R"({"spa":"a"})");
  auto d2 = db->create_deploy("demo", {file("index.html", "v2")}, R"({"spa":"b"})");
  auto d3 = db->create_deploy("demo", {file("index.html", "v3")}, R"({"spa":"c"})");
  EXPECT_EQ(db->rollback("demo", d1), d1);
  EXPECT_EQ(db->site("demo")->live_deploy, d1);
  EXPECT_EQ(db->site("demo")->config_json, R"({"spa":"a"})")
      << "the deploy's own config comes back with it";
  EXPECT_EQ(db->rollback("demo", d3), d3) << "forward again";
  EXPECT_EQ(db->site("demo")->config_json, R"({"spa":"c"})");
  (void)d2;
}

TEST_F(DatabaseTest, RollbackRefusesUnknownAndForeignDeploys) {
  auto mine = db->create_deploy("demo", {file("index.html", "v1")}, "{}");
  auto theirs = db->create_deploy("other", {file("index.html", "o1")}, "{}");
  EXPECT_EQ(kind_of([&] { db->rollback("demo", theirs); }), DbError::Kind::not_found);
  EXPECT_EQ(kind_of([&] { db->rollback("demo", 999999); }), DbError::Kind::not_found);
  EXPECT_EQ(kind_of([&] { db->rollback("nope", std::nullopt); }), DbError::Kind::not_found);
  EXPECT_EQ(db->site("demo")->live_deploy, mine);
  EXPECT_EQ(db->site("other")->live_deploy, theirs);
}

// --- changed paths ----------------------------------------------------------------------------

TEST_F(DatabaseTest, ChangedPathsListsAddedRemovedAndChanged) {
  auto d1 = db->create_deploy(
      "demo", {file("same.html", "s"), file("changed.css", "old"), file("removed.js", "r")}, "{}");
  auto d2 = db->create_deploy(
      "demo", {file("same.html", "s"), file("changed.css", "new"), file("added/index.html", "a")},
      "{}");
  EXPECT_EQ(as_set(db->changed_paths(d1, d2)),
            (std::set<std::string>{"changed.css", "removed.js", "added/index.html"}));
  EXPECT_EQ(as_set(db->changed_paths(d2, d1)),
            (std::set<std::string>{"changed.css", "removed.js", "added/index.html"}));
  EXPECT_TRUE(db->changed_paths(d1, d1).empty());
}

// --- prune and referenced hashes ----------------------------------------------------------------

TEST_F(DatabaseTest, PruneKeepsTheNewest) {
  std::vector<std::int64_t> ids;
  for (int v = 1; v <= 5; ++v)
    ids.push_back(db->create_deploy("demo", {file("index.html", "v" + std::to_string(v))}, "{}"));
  EXPECT_EQ(db->prune("demo", 2), 3u);
  auto left = db->deploys("demo");
  ASSERT_EQ(left.size(), 2u);
  EXPECT_EQ(left[0].id, ids[4]);
  EXPECT_EQ(left[1].id, ids[3]);
  EXPECT_FALSE(db->resolve(ids[0], "index.html")) << "a pruned deploy's files go with it";
  EXPECT_EQ(db->prune("demo", 2), 0u);
  EXPECT_EQ(db->prune("no-such-site", 2), 0u);
}

TEST_F(DatabaseTest, PruneNeverRemovesTheLiveDeploy) {
  std::vector<std::int64_t> ids;
  for (int v = 1; v <= 5; ++v)
    ids.push_back(db->create_deploy("demo", {file("index.html", "v" + std::to_string(v))}, "{}"));
  db->rollback("demo", ids[0]);  // the oldest is live
  EXPECT_EQ(db->prune("demo", 2), 2u);
  auto left = db->deploys("demo");
  std::set<std::int64_t> kept;
  for (const auto& d : left) kept.insert(d.id);
  EXPECT_EQ(kept, (std::set<std::int64_t>{ids[0], ids[3], ids[4]}));
  EXPECT_EQ(db->site("demo")->live_deploy, ids[0]);
  EXPECT_TRUE(db->resolve(ids[0], "index.html"));
  // Even keep = 0 leaves the live deploy.
  db->prune("demo", 0);
  ASSERT_EQ(db->deploys("demo").size(), 1u);
  EXPECT_EQ(db->deploys("demo")[0].id, ids[0]);
}

TEST_F(DatabaseTest, PruneTouchesOnlyItsSite) {
  db->create_deploy("a", {file("index.html", "a1")}, "{}");
  db->create_deploy("a", {file("index.html", "a2")}, "{}");
  db->create_deploy("b", {file("index.html", "b1")}, "{}");
  db->create_deploy("b", {file("index.html", "b2")}, "{}");
  EXPECT_EQ(db->prune("a", 1), 1u);
  EXPECT_EQ(db->deploys("a").size(), 1u);
  EXPECT_EQ(db->deploys("b").size(), 2u);
}

TEST_F(DatabaseTest, ReferencedHashesFollowKeptDeploysAndVariants) {
  auto v1 = file("index.html", "v1", std::string(64, 'b'));
  auto v2 = file("index.html", "v2");
  v2.zst = std::string(64, 'd');
  db->create_deploy("demo", {v1}, "{}");
  db->create_deploy("demo", {v2}, "{}");
  EXPECT_EQ(as_set(db->referenced_hashes()),
            (std::set<std::string>{v1.hash, v1.br, v2.hash, v2.zst}));
  db->prune("demo", 1);
  EXPECT_EQ(as_set(db->referenced_hashes()), (std::set<std::string>{v2.hash, v2.zst}));
}

// --- opening
// ---------------------------------------------------------------------------------------

TEST(OpenSqlite, NamesTheFileItCannotOpen) {
  TempDir d;
  std::string path = d / "no/such/dir/atoll.db";
  try {
    host::open_sqlite(path);
    FAIL() << "expected an error";
  } catch (const DbError& e) {
    EXPECT_EQ(e.kind(), DbError::Kind::unavailable);
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

// sqlite3_open_v2 opens lazily; the first statement finds the bad file.
TEST(OpenSqlite, NamesAFileThatIsNotADatabase) {
  TempDir d;
  d.write("atoll.db", std::string(8192, 'x'));
  try {
    host::open_sqlite(d / "atoll.db");
    FAIL() << "expected an error";
  } catch (const DbError& e) {
    EXPECT_EQ(e.kind(), DbError::Kind::unavailable);
    EXPECT_NE(std::string(e.what()).find("'" + (d / "atoll.db") + "'"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("not a database"), std::string::npos) << e.what();
  }
}

// --- custom domains
// -------------------------------------------------------------------------------

namespace {

std::string domain_error(std::string_view d, std::string_view base = "localhost") {
  try {
    host::normalise_domain(d, base);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Domains, CaseTrailingDotAndIdnaGiveOneSpelling) {
  EXPECT_EQ(host::normalise_domain("EXAMPLE2.TEST."), "example2.test");
  EXPECT_EQ(host::normalise_domain("Www.Example.Com"), "www.example.com");
  EXPECT_EQ(host::normalise_domain("b\xc3\xbc"
                                   "cher.example"),
            "xn--bcher-kva.example");
  EXPECT_EQ(host::normalise_domain("B\xc3\x9c"
                                   "CHER.Example."),
            "xn--bcher-kva.example")
      << "UTS #46 folds the case of non-ASCII letters too";
  EXPECT_EQ(host::normalise_domain("xn--bcher-kva.example"), "xn--bcher-kva.example");
  EXPECT_EQ(host::normalise_domain("*.Example.COM"), "*.example.com");
  EXPECT_EQ(host::normalise_domain("*.sub.example.com."), "*.sub.example.com");
}

TEST(Domains, EachRuleIsNamed) {
  EXPECT_NE(domain_error("").find("cannot be empty"), std::string::npos);
  EXPECT_NE(domain_error("a b.test").find("only letters, digits"), std::string::npos);
  EXPECT_NE(domain_error("under_score.test").find("only letters, digits"), std::string::npos);
  EXPECT_NE(domain_error("example.test:8080").find("only letters, digits"), std::string::npos);
  EXPECT_NE(domain_error("a..test").find("empty label"), std::string::npos);
  EXPECT_NE(domain_error(".test").find("empty label"), std::string::npos);
  EXPECT_NE(domain_error("-a.test").find("starts or ends with '-'"), std::string::npos);
  EXPECT_NE(domain_error(std::string(64, 'a') + ".test").find("longer than 63"), std::string::npos);
  std::string long_name;
  for (int i = 0; i < 50; ++i) long_name += "abcd.";
  EXPECT_NE(domain_error(long_name + "test").find("longer than 253"), std::string::npos);
  EXPECT_NE(domain_error("intranet").find("at least two labels"), std::string::npos);
  EXPECT_NE(domain_error("127.0.0.1").find("IP address"), std::string::npos);
  EXPECT_NE(domain_error("a.*.test").find("whole first label"), std::string::npos);
  EXPECT_NE(domain_error("*example.test").find("whole first label"), std::string::npos);
  EXPECT_NE(domain_error("*.com").find("at least two labels"), std::string::npos);
  EXPECT_NE(domain_error("xn--zz.test").find("not valid punycode"), std::string::npos);
  EXPECT_NE(domain_error("demo.localhost").find("under the base domain 'localhost'"),
            std::string::npos);
  EXPECT_NE(domain_error("DEMO.LOCALHOST.").find("under the base domain"), std::string::npos);
  EXPECT_NE(domain_error("*.localhost").find("under the base domain"), std::string::npos);
  EXPECT_EQ(domain_error("notlocalhost.test"), "");
  EXPECT_EQ(domain_error("mylocalhost"), domain_error("mylocalhost", ""))
      << "a name merely ending in the base domain's letters is not under it";
}

TEST_F(DatabaseTest, ADomainBelongsToOneSite) {
  db->create_site("first", {"Shop.Example.Test."});
  EXPECT_EQ(db->site("first")->domains, std::vector<std::string>{"shop.example.test"});
  try {
    db->create_site("second", {"shop.example.test"});
    FAIL() << "a second site took a domain";
  } catch (const DbError& e) {
    EXPECT_EQ(e.kind(), DbError::Kind::conflict);
    EXPECT_NE(std::string(e.what()).find("already belongs to site 'first'"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(db->site("second")) << "the refused site was not created";
  db->create_site("second", {"*.example.test"});  // a wildcard over it is another name
  EXPECT_EQ(kind_of([&] { db->set_domains("second", {"SHOP.example.test"}); }),
            DbError::Kind::conflict);
  EXPECT_EQ(db->site("second")->domains, std::vector<std::string>{"*.example.test"});
  db->set_domains("first", {"shop.example.test", "SHOP.EXAMPLE.TEST"});
  EXPECT_EQ(db->site("first")->domains, std::vector<std::string>{"shop.example.test"})
      << "one domain, said twice, is stored once";
  EXPECT_EQ(kind_of([&] { db->set_domains("first", {"bad domain"}); }), DbError::Kind::invalid);
}
