// Publishing: _atoll.toml and its errors (FILE:LINE:COL), precompressed
// variants, refused symlinks and paths, and that a refused publish stores
// nothing. A real content store and SQLite file in a temporary directory.
#include <atoll/host/publish.hpp>

#include <gtest/gtest.h>

#include <brotli/decode.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <cstdio>
#include <filesystem>
#include <regex>

#include "host/temp_dir.hpp"

using namespace atl;
using namespace atl::test;
using host::DbError;

namespace {

std::string gunzip(const std::string& in) {
  z_stream z{};
  inflateInit2(&z, 15 + 16);
  std::string out(1 << 20, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = uInt(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = uInt(out.size());
  int rc = inflate(&z, Z_FINISH);
  out.resize(z.total_out);
  inflateEnd(&z);
  return rc == Z_STREAM_END ? out : "<gzip error>";
}

std::string unbrotli(const std::string& in) {
  std::string out(1 << 20, '\0');
  std::size_t size = out.size();
  if (BrotliDecoderDecompress(in.size(), reinterpret_cast<const std::uint8_t*>(in.data()), &size,
                              reinterpret_cast<std::uint8_t*>(out.data())) !=
      BROTLI_DECODER_RESULT_SUCCESS)
    return "<brotli error>";
  out.resize(size);
  return out;
}

std::string unzstd(const std::string& in) {
  std::string out(1 << 20, '\0');
  std::size_t n = ZSTD_decompress(out.data(), out.size(), in.data(), in.size());
  if (ZSTD_isError(n)) return "<zstd error>";
  out.resize(n);
  return out;
}

// The message of the std::invalid_argument `fn` throws.
template <class F>
std::string invalid(F&& fn) {
  try {
    fn();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected std::invalid_argument";
  return "";
}

std::string config_error(const std::string& toml) {
  return invalid([&] { host::parse_site_config(toml, "site/_atoll.toml"); });
}

std::string css(int lines) {
  std::string out;
  for (int i = 0; i < lines; ++i)
    out += ".rule-" + std::to_string(i) + " { color: #123456; margin: 0 auto; }\n";
  return out;
}

class PublishTest : public ::testing::Test {
 protected:
  TempDir data;
  TempDir site;
  host::ContentStore store{data.path()};
  std::unique_ptr<host::Database> db = host::open_sqlite(data / "atoll.db");
  host::Publisher pub{store, *db};

  // Nothing reached the store or the database.
  void expect_nothing_stored() {
    EXPECT_TRUE(store.list().empty()) << store.list().size() << " blobs were stored";
    EXPECT_TRUE(db->sites().empty());
    EXPECT_TRUE(db->referenced_hashes().empty());
  }
};

}  // namespace

// --- _atoll.toml ---------------------------------------------------------------------------------

TEST(SiteConfig, ParsesEverySetting) {
  auto c = host::parse_site_config(R"(
not_found = "/404.html"
spa = "app/index.html"
[[redirects]]
from = "/old"
to = "/new"
[[redirects]]
from = "/blog/*"
to = "https://blog.example.com/*"
status = 308
[[headers]]
path = "/assets/"
name = "X-Frame-Options"
value = "DENY"
[[headers]]
name = "X-Robots-Tag"
value = "noindex"
)",
                                   "_atoll.toml");
  EXPECT_EQ(c.not_found, "404.html") << "a leading '/' is dropped";
  EXPECT_EQ(c.spa, "app/index.html");
  ASSERT_EQ(c.redirects.size(), 2u);
  EXPECT_EQ(c.redirects[0].status, 301) << "the default";
  EXPECT_EQ(c.redirects[1].from, "/blog/*");
  EXPECT_EQ(c.redirects[1].status, 308);
  ASSERT_EQ(c.headers.size(), 2u);
  EXPECT_EQ(c.headers[0].path, "/assets/");
  EXPECT_EQ(c.headers[1].path, "/") << "the default";
}

TEST(SiteConfig, EmptyFileIsAnEmptyConfig) {
  auto c = host::parse_site_config("# nothing\n", "_atoll.toml");
  EXPECT_EQ(c.to_json(), "{}");
}

TEST(SiteConfig, JsonRoundTrip) {
  auto c = host::parse_site_config(
      "not_found = \"404.html\"\n[[redirects]]\nfrom = \"/a\"\nto = \"/b\"\nstatus = 302\n"
      "[[headers]]\npath = \"/x/\"\nname = \"X-A\"\nvalue = \"1\"\n",
      "_atoll.toml");
  auto back = host::SiteConfig::from_json(c.to_json());
  EXPECT_EQ(back.not_found, "404.html");
  ASSERT_EQ(back.redirects.size(), 1u);
  EXPECT_EQ(back.redirects[0].to, "/b");
  EXPECT_EQ(back.redirects[0].status, 302);
  ASSERT_EQ(back.headers.size(), 1u);
  EXPECT_EQ(back.headers[0].value, "1");
  EXPECT_EQ(back.to_json(), c.to_json());
  EXPECT_TRUE(host::SiteConfig::from_json("not json").redirects.empty());
}

TEST(SiteConfig, CleanUrlsAreOnUnlessTurnedOff) {
  EXPECT_TRUE(host::parse_site_config("", "_atoll.toml").clean_urls);
  auto off = host::parse_site_config("clean_urls = false\n", "_atoll.toml");
  EXPECT_FALSE(off.clean_urls);
  EXPECT_FALSE(host::SiteConfig::from_json(off.to_json()).clean_urls) << off.to_json();
  EXPECT_TRUE(host::SiteConfig::from_json("{}").clean_urls);
  EXPECT_TRUE(std::regex_search(
      config_error("\nclean_urls = \"no\"\n"),
      std::regex("^site/_atoll\\.toml:2:\\d+: 'clean_urls' must be true or false")));
}

TEST(SiteConfig, SyntaxErrorSaysFileLineColumn) {
  std::string e = config_error("spa = \"index.html\"\n\nnot_found = oops\n");
  EXPECT_TRUE(std::regex_search(e, std::regex("^site/_atoll\\.toml:3:\\d+: "))) << e;
}

TEST(SiteConfig, UnterminatedStringSaysFileLineColumn) {
  std::string e = config_error("[[redirects]]\nfrom = \"/a\nto = \"/b\"\n");
  EXPECT_TRUE(std::regex_search(e, std::regex("^site/_atoll\\.toml:2:\\d+: "))) << e;
}

TEST(SiteConfig, UnknownSettingSaysWhereAndWhatIsKnown) {
  std::string e = config_error("spa = \"index.html\"\ncolour = \"red\"\n");
  EXPECT_TRUE(
      std::regex_search(e, std::regex("^site/_atoll\\.toml:2:\\d+: unknown setting 'colour'")))
      << e;
  EXPECT_NE(e.find("known: not_found, spa, redirects, headers"), std::string::npos) << e;
}

TEST(SiteConfig, WrongTypesSayFileLineColumn) {
  EXPECT_TRUE(
      std::regex_search(config_error("\nnot_found = 404\n"),
                        std::regex("^site/_atoll\\.toml:2:\\d+: 'not_found' must be a string")));
  EXPECT_TRUE(
      std::regex_search(config_error("redirects = \"/a -> /b\"\n"),
                        std::regex("^site/_atoll\\.toml:1:\\d+: 'redirects' must be an array")));
  EXPECT_TRUE(std::regex_search(
      config_error("headers = [1]\n"),
      std::regex("^site/_atoll\\.toml:1:\\d+: each header rule must be a table")));
}

TEST(SiteConfig, RedirectRulesSayFileLineColumn) {
  EXPECT_TRUE(std::regex_search(
      config_error("[[redirects]]\nfrom = \"/a\"\nto = \"/b\"\nstatus = 303\n"),
      std::regex("^site/_atoll\\.toml:4:\\d+: 'status' must be 301, 302, 307 or 308")));
  EXPECT_TRUE(
      std::regex_search(config_error("[[redirects]]\nfrom = \"a\"\nto = \"/b\"\n"),
                        std::regex("^site/_atoll\\.toml:2:\\d+: 'from' must start with '/'")));
  EXPECT_TRUE(std::regex_search(
      config_error("[[redirects]]\nfrom = \"/a\"\n"),
      std::regex("^site/_atoll\\.toml:1:\\d+: a redirect needs 'from' and 'to'")));
  EXPECT_TRUE(std::regex_search(
      config_error("[[redirects]]\nfrom = \"/a\"\nto = \"/b\\r\\nSet-Cookie: x\"\n"),
      std::regex("^site/_atoll\\.toml:3:\\d+: 'to' holds a control character")));
}

TEST(SiteConfig, HeaderRulesSayFileLineColumn) {
  std::string e = config_error("[[headers]]\nname = \"X-A\"\nvalue = \"a\\r\\nSet-Cookie: x=1\"\n");
  EXPECT_TRUE(std::regex_search(e, std::regex("^site/_atoll\\.toml:1:\\d+: "))) << e;
  e = config_error("\n[[headers]]\nname = \"Bad Name\"\nvalue = \"v\"\n");
  EXPECT_TRUE(std::regex_search(e, std::regex("^site/_atoll\\.toml:2:\\d+: "))) << e;
  e = config_error("[[headers]]\nname = \"X-A\"\n");
  EXPECT_TRUE(std::regex_search(
      e, std::regex("^site/_atoll\\.toml:1:\\d+: a header rule needs 'name' and 'value'")))
      << e;
}

// A page setting that would climb out of the site is an error in the file,
// and says where, like every other error in it.
TEST(SiteConfig, UnsafePagePathSaysFileLineColumn) {
  std::string e = config_error("spa = \"index.html\"\nnot_found = \"../../etc/passwd\"\n");
  EXPECT_TRUE(std::regex_search(e, std::regex("^site/_atoll\\.toml:2:\\d+: "))) << e;
  EXPECT_NE(e.find(".."), std::string::npos) << e;
}

// --- publish paths -------------------------------------------------------------------------------

TEST(PublishPath, AcceptsOrdinaryPaths) {
  for (const char* p :
       {"index.html", "a/b/c.css", "with space.txt", "caf\xc3\xa9.html", ".well-known/x"})
    EXPECT_NO_THROW(host::validate_publish_path(p)) << p;
}

TEST(PublishPath, RefusesEscapesNamingThePath) {
  for (std::string p :
       {std::string(""), std::string("/abs"), std::string(".."), std::string("a/../b"),
        std::string("./a"), std::string("a//b"), std::string("a/"), std::string("a\\b"),
        std::string("a\nb"), std::string("nul\0byte", 8), std::string(1025, 'a')}) {
    std::string e = invalid([&] { host::validate_publish_path(p); });
    EXPECT_NE(e.find("path '"), std::string::npos) << e;
  }
}

TEST(HiddenNames, RefusedPrefixNamesTheHiddenSegment) {
  const std::vector<std::string> none;
  EXPECT_EQ(host::hidden_refusal("index.html", none), "");
  EXPECT_EQ(host::hidden_refusal(".env", none), ".env");
  EXPECT_EQ(host::hidden_refusal(".git/config", none), ".git/");
  EXPECT_EQ(host::hidden_refusal("a/b/.git/objects/x", none), "a/b/.git/");
  EXPECT_EQ(host::hidden_refusal("a/.htpasswd", none), "a/.htpasswd");
  EXPECT_EQ(host::hidden_refusal(".well-known/security.txt", none), "");
  EXPECT_EQ(host::hidden_refusal("a/.well-known/x", none), "");
  EXPECT_EQ(host::hidden_refusal(".well-known", none), ".well-known")
      << "the exception is a directory, not a file named .well-known";
  EXPECT_EQ(host::hidden_refusal(".well-known/.x", none), ".well-known/.x");
  EXPECT_EQ(host::hidden_refusal("v1.2/app.js", none), "") << "a dot inside a name is not hidden";
}

TEST(HiddenNames, IncludeHiddenAllowsExactNames) {
  const std::vector<std::string> allow = {".nojekyll", ".config"};
  EXPECT_EQ(host::hidden_refusal(".nojekyll", allow), "");
  EXPECT_EQ(host::hidden_refusal(".config/app.json", allow), "");
  EXPECT_EQ(host::hidden_refusal(".config/.env", allow), ".config/.env");
  EXPECT_EQ(host::hidden_refusal(".nojekyll2", allow), ".nojekyll2");
  auto c = host::parse_site_config("include_hidden = [\".nojekyll\"]\n", "_atoll.toml");
  EXPECT_EQ(host::SiteConfig::from_json(c.to_json()).include_hidden,
            std::vector<std::string>{".nojekyll"});
}

TEST_F(PublishTest, PublishDirSkipsHiddenNamesAndListsThem) {
  site.write(".git/config", "secret");
  site.write(".env", "secret");
  site.write("index.html", "<p>hi</p>");
  auto r = pub.publish_dir("hidden", site.path());
  EXPECT_EQ(r.files, 1u);
  EXPECT_EQ(r.skipped, (std::vector<std::string>{".env", ".git/"}));
  EXPECT_FALSE(db->resolve(r.deploy, ".env"));
  EXPECT_FALSE(db->resolve(r.deploy, ".git/config"));
}

// --- precompressed variants ---------------------------------------------------------------------

TEST_F(PublishTest, TextGetsThreeVariantsThatDecodeToTheOriginal) {
  std::string text = css(200);
  auto r = pub.record("style.css", text);
  EXPECT_EQ(r.hash, host::sha256_hex(text));
  EXPECT_EQ(r.mime.substr(0, 8), "text/css");
  ASSERT_FALSE(r.br.empty());
  ASSERT_FALSE(r.zst.empty());
  ASSERT_FALSE(r.gz.empty());
  for (const auto* h : {&r.hash, &r.br, &r.zst, &r.gz}) EXPECT_TRUE(store.has(*h)) << *h;
  EXPECT_EQ(unbrotli(slurp(store.path(r.br))), text);
  EXPECT_EQ(unzstd(slurp(store.path(r.zst))), text);
  EXPECT_EQ(gunzip(slurp(store.path(r.gz))), text);
  EXPECT_EQ(r.br_size, store.size(r.br));
  EXPECT_EQ(r.zst_size, store.size(r.zst));
  EXPECT_EQ(r.gz_size, store.size(r.gz));
  EXPECT_LT(r.br_size, text.size() / 4);
}

TEST_F(PublishTest, OtherTextTypesGetVariantsToo) {
  for (const char* name : {"index.html", "app.js", "data.json", "logo.svg"}) {
    auto r = pub.record(name, css(50));
    EXPECT_FALSE(r.gz.empty()) << name;
  }
}

TEST_F(PublishTest, BinaryAndSmallFilesGetNone) {
  auto png = pub.record("logo.png", css(200));  // compressible bytes, but not a text type
  EXPECT_TRUE(png.br.empty() && png.zst.empty() && png.gz.empty());
  auto small = pub.record("tiny.css", "a{b:c}");
  EXPECT_TRUE(small.br.empty() && small.zst.empty() && small.gz.empty());
  EXPECT_EQ(store.list().size(), 2u);
}

TEST_F(PublishTest, IncompressibleTextGetsNone) {
  std::string noise(4096, '\0');
  unsigned x = 12345;
  for (auto& c : noise) {
    x = x * 1103515245 + 12345;
    c = char(0x21 + (x >> 16) % 94);  // printable, but no repeats to speak of
  }
  auto r = pub.record("noise.txt", noise);
  // A variant is kept only if it saves at least 5 %.
  if (!r.gz.empty()) {
    EXPECT_LT(r.gz_size * 100, noise.size() * 95);
  }
  if (!r.br.empty()) {
    EXPECT_LT(r.br_size * 100, noise.size() * 95);
  }
}

// --- publish_dir ---------------------------------------------------------------------------------

TEST_F(PublishTest, PublishDirDeploysEveryFile) {
  site.write("index.html", "<h1>home</h1>");
  site.write("about.html", "<h1>about</h1>");
  site.write("assets/style.css", css(100));
  site.write(".git/config", "hidden: not published");
  site.write(".env", "SECRET=1");
  site.write("_atoll.toml", "not_found = \"404.html\"\n");
  auto r = pub.publish_dir("demo", site.path());
  EXPECT_EQ(r.files, 3u);
  auto s = db->site("demo");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->live_deploy, r.deploy);
  EXPECT_EQ(host::SiteConfig::from_json(s->config_json).not_found, "404.html");
  EXPECT_TRUE(db->resolve(r.deploy, "assets/style.css"));
  EXPECT_FALSE(db->resolve(r.deploy, "_atoll.toml")) << "the config is read, not served";
  EXPECT_FALSE(db->resolve(r.deploy, ".env"));
  EXPECT_FALSE(db->resolve(r.deploy, ".git/config"));
}

TEST_F(PublishTest, RepublishingStoresOnlyNewBlobs) {
  site.write("index.html", "<h1>v1</h1>");
  site.write("assets/style.css", css(100));
  auto first = pub.publish_dir("demo", site.path());
  EXPECT_EQ(first.new_blobs, 5u);  // index.html, style.css and its three variants
  site.write("index.html", "<h1>v2</h1>");
  auto second = pub.publish_dir("demo", site.path());
  EXPECT_EQ(second.new_blobs, 1u);
  EXPECT_NE(second.deploy, first.deploy);
}

TEST_F(PublishTest, SymlinkIsRefusedByNameAndNothingIsStored) {
  site.write("index.html", "<h1>home</h1>");
  site.write("assets/style.css", css(100));
  ASSERT_EQ(::symlink("/etc/passwd", (site / "assets/passwd").c_str()), 0);
  std::string e = invalid([&] { pub.publish_dir("demo", site.path()); });
  EXPECT_NE(e.find(site / "assets/passwd"), std::string::npos) << e;
  EXPECT_NE(e.find("symlink"), std::string::npos) << e;
  expect_nothing_stored();
}

TEST_F(PublishTest, SymlinkToADirectoryIsRefusedToo) {
  site.write("index.html", "<h1>home</h1>");
  ASSERT_EQ(::symlink("/etc", (site / "etc").c_str()), 0);
  EXPECT_NE(invalid([&] { pub.publish_dir("demo", site.path()); }).find(site / "etc"),
            std::string::npos);
  expect_nothing_stored();
}

TEST_F(PublishTest, BadConfigSaysFileLineColumnAndNothingIsStored) {
  // Many files, so some are read before _atoll.toml whatever the directory order.
  for (int i = 0; i < 20; ++i) site.write("page" + std::to_string(i) + ".html", css(20 + i));
  site.write("_atoll.toml",
             "not_found = \"404.html\"\n[[redirects]]\nfrom = \"/a\"\nto = \"/b\"\nstatus = 200\n");
  std::string e = invalid([&] { pub.publish_dir("demo", site.path()); });
  EXPECT_TRUE(
      std::regex_search(e, std::regex("^" + site.path() + "/_atoll\\.toml:5:\\d+: 'status'")))
      << e;
  expect_nothing_stored();
}

TEST_F(PublishTest, InvalidSiteNameIsRefusedBeforeAnythingIsRead) {
  site.write("index.html", "x");
  try {
    pub.publish_dir("Not_A_Label", site.path());
    FAIL();
  } catch (const DbError& e) {
    EXPECT_EQ(e.kind(), DbError::Kind::invalid);
    EXPECT_NE(std::string(e.what()).find("1-63 characters"), std::string::npos);
  }
  expect_nothing_stored();
}

TEST_F(PublishTest, NotADirectory) {
  EXPECT_NE(invalid([&] { pub.publish_dir("demo", site / "missing"); }).find("is not a directory"),
            std::string::npos);
}

// --- publish_files and publish_manifest
// --------------------------------------------------------------

TEST_F(PublishTest, PublishFilesRefusesABadPathAndStoresNothing) {
  std::vector<host::PublishFile> files = {
      {"index.html", css(30)}, {"style.css", css(40)}, {"a/../../escape", "x"}};
  EXPECT_NE(invalid([&] { pub.publish_files("demo", files); }).find("a/../../escape"),
            std::string::npos);
  expect_nothing_stored();
}

TEST_F(PublishTest, PublishFilesRefusesABadConfigAndStoresNothing) {
  std::vector<host::PublishFile> files = {{"index.html", css(30)}, {"_atoll.toml", "spa = 1\n"}};
  std::string e = invalid([&] { pub.publish_files("demo", files); });
  EXPECT_TRUE(std::regex_search(e, std::regex("^_atoll\\.toml:1:\\d+: 'spa' must be a string")))
      << e;
  expect_nothing_stored();
}

TEST_F(PublishTest, PublishFilesRefusesADuplicatePathAndStoresNothing) {
  std::vector<host::PublishFile> files = {{"index.html", css(30)}, {"index.html", css(31)}};
  EXPECT_THROW(pub.publish_files("demo", files), DbError);
  expect_nothing_stored();
}

TEST_F(PublishTest, PublishManifestUsesUploadedBlobs) {
  std::string text = css(100);
  std::string h = store.put(text);
  auto r = pub.publish_manifest("demo", {{"style.css", h}}, "spa = \"index.html\"\n");
  auto rec = db->resolve(r.deploy, "style.css");
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->hash, h);
  EXPECT_FALSE(rec->gz.empty()) << "variants are made on the server";
  EXPECT_EQ(host::SiteConfig::from_json(db->site("demo")->config_json).spa, "index.html");
}

TEST_F(PublishTest, PublishManifestRefusesAMissingBlobAndStoresNothing) {
  std::string uploaded = store.put(css(100));
  auto before = store.list();
  std::string never = host::sha256_hex("never uploaded");
  try {
    pub.publish_manifest("demo", {{"a.css", uploaded}, {"b.css", never}}, "");
    FAIL();
  } catch (const DbError& e) {
    EXPECT_EQ(e.kind(), DbError::Kind::invalid);
    EXPECT_NE(std::string(e.what()).find(never), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("b.css"), std::string::npos);
  }
  EXPECT_EQ(store.list(), before) << "no variants were made for a deploy that failed";
  EXPECT_TRUE(db->sites().empty());
}

TEST_F(PublishTest, PublishManifestRefusesABadConfigAndStoresNothing) {
  std::string uploaded = store.put(css(100));
  auto before = store.list();
  EXPECT_THROW(pub.publish_manifest("demo", {{"a.css", uploaded}}, "spa = [\n"),
               std::invalid_argument);
  EXPECT_EQ(store.list(), before);
  EXPECT_TRUE(db->sites().empty());
}

TEST_F(PublishTest, PublishManifestRefusesDigestsThatAreNot) {
  EXPECT_THROW(pub.publish_manifest("demo", {{"a.css", "../../etc/passwd"}}, ""), DbError);
  EXPECT_THROW(pub.publish_manifest("demo", {{"../a.css", host::sha256_hex("x")}}, ""),
               std::invalid_argument);
  expect_nothing_stored();
}

// --- garbage collection
// ---------------------------------------------------------------------------------

TEST_F(PublishTest, CollectGarbageKeepsWhatKeptDeploysUse) {
  for (int v = 1; v <= 4; ++v) {
    site.write("index.html", "<h1>version " + std::to_string(v) + "</h1>");
    site.write("shared.css", css(50));
    pub.publish_dir("demo", site.path());
  }
  std::string stray = store.put("uploaded but never deployed");
  // Fresh blobs are safe from collection (a deploy may be in progress).
  auto usage = pub.usage();
  EXPECT_EQ(usage.deploys, 4u);
  EXPECT_EQ(usage.unreferenced, 1u) << "only the stray";
  auto first = pub.collect_garbage(2);
  EXPECT_EQ(first.deploys_removed, 2u);
  EXPECT_EQ(first.blobs_removed, 0u);
  EXPECT_EQ(first.blobs_too_young, 3u);
  EXPECT_EQ(db->deploys("demo").size(), 2u);
  EXPECT_TRUE(store.has(stray));
  usage = pub.usage();
  EXPECT_EQ(usage.deploys, 2u);
  EXPECT_EQ(usage.unreferenced, 3u);
  EXPECT_GT(usage.unreferenced_disk_bytes, 0u);
  EXPECT_GE(usage.disk_bytes, usage.unreferenced_disk_bytes);
  // With no minimum age, everything unreferenced goes.
  auto second = pub.collect_garbage(2, 0);
  EXPECT_EQ(second.blobs_removed, 3u);  // versions 1 and 2, and the stray
  EXPECT_EQ(second.bytes_freed, usage.unreferenced_disk_bytes);
  EXPECT_EQ(pub.usage().unreferenced, 0u);
  EXPECT_EQ(pub.usage().blobs, usage.blobs - 3);
  EXPECT_FALSE(store.has(stray));
  EXPECT_FALSE(store.has(host::sha256_hex("<h1>version 1</h1>")));
  EXPECT_TRUE(store.has(host::sha256_hex("<h1>version 3</h1>")));
  EXPECT_TRUE(store.has(host::sha256_hex(css(50))));
  for (const auto& h : db->referenced_hashes()) EXPECT_TRUE(store.has(h)) << h;
}

TEST_F(PublishTest, CollectGarbageRemovesUploadLeftoversOnlyWhenOld) {
  std::string tmp = store.dir() + "/tmp";
  ::mkdir(tmp.c_str(), 0755);
  std::string leftover = tmp + "/" + host::sha256_hex("x") + ".123.456";
  std::FILE* f = std::fopen(leftover.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("half a blob", f);
  std::fclose(f);
  EXPECT_EQ(pub.collect_garbage(10).tmp_removed, 0u) << "it may be an upload in progress";
  EXPECT_EQ(::access(leftover.c_str(), F_OK), 0);
  auto r = pub.collect_garbage(10, 0);
  EXPECT_EQ(r.tmp_removed, 1u);
  EXPECT_GT(r.bytes_freed, 0u);
  EXPECT_NE(::access(leftover.c_str(), F_OK), 0);
}
