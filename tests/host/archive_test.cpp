// Uploaded .tar.gz archives: a round trip through write_tar_gz, and every
// unsafe entry refused by name. The archives are built here byte by byte, so
// the tests do not depend on the writer under test for the bad cases.
#include "host/archive.hpp"

#include <gtest/gtest.h>

#include <zlib.h>

#include <cstdio>
#include <cstring>

using namespace atl;
using host::PublishFile;

namespace {

// One ustar header block (plus data blocks) in `tar`.
void entry(std::string& tar, const std::string& name, char type, std::string_view data = "",
           const std::string& link = "", const std::string& prefix = "") {
  char h[512] = {};
  std::memcpy(h, name.data(), std::min<std::size_t>(name.size(), 100));
  std::snprintf(h + 100, 8, "%07o", 0644);
  std::snprintf(h + 108, 8, "%07o", 0);
  std::snprintf(h + 116, 8, "%07o", 0);
  std::snprintf(h + 124, 12, "%011llo", static_cast<unsigned long long>(data.size()));
  std::snprintf(h + 136, 12, "%011o", 0);
  h[156] = type;
  std::memcpy(h + 157, link.data(), std::min<std::size_t>(link.size(), 100));
  std::memcpy(h + 257, "ustar", 6);
  std::memcpy(h + 263, "00", 2);
  std::memcpy(h + 345, prefix.data(), std::min<std::size_t>(prefix.size(), 155));
  std::memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  std::snprintf(h + 148, 8, "%06o", sum);
  tar.append(h, 512);
  tar.append(data);
  tar.append((512 - data.size() % 512) % 512, '\0');
}

// A pax extended header ('x') that renames the next entry.
void pax_path(std::string& tar, const std::string& path) {
  std::string rec = " path=" + path + "\n";
  // The record's length counts its own digits.
  std::size_t len = rec.size() + 1;
  while (std::to_string(len).size() + rec.size() != len) ++len;
  entry(tar, "PaxHeaders/x", 'x', std::to_string(len) + rec);
}

std::string gzip(const std::string& data, int level = 6) {
  z_stream z{};
  deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, uLong(data.size())) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = uInt(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = uInt(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string finish(std::string tar) {
  tar.append(1024, '\0');
  return gzip(tar);
}

constexpr std::size_t limit = 64 * 1024 * 1024;

// The message of the std::invalid_argument that reading `archive` throws.
std::string refusal(const std::string& archive) {
  try {
    host::read_tar_gz(archive, limit);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected std::invalid_argument";
  return "";
}

}  // namespace

// --- round trip ---------------------------------------------------------------------------

TEST(Archive, RoundTrip) {
  std::vector<PublishFile> files = {
      {"index.html", "<h1>hello</h1>\n"},
      {"empty.txt", ""},
      {"exactly-512.bin", std::string(512, 'x')},
      {"assets/app.3f2a9c1e.js", "console.log(1)\n"},
      {"deep/er/and/deeper/file.css", "body{}"},
      {std::string(150, 'n') + "/long-name-" + std::string(80, 'm') + ".html", "long"},
  };
  std::string binary(70000, '\0');
  for (std::size_t i = 0; i < binary.size(); ++i) binary[i] = char(i * 31);
  files.push_back({"image.bin", binary});
  auto back = host::read_tar_gz(host::write_tar_gz(files), limit);
  ASSERT_EQ(back.size(), files.size());
  for (std::size_t i = 0; i < files.size(); ++i) {
    EXPECT_EQ(back[i].path, files[i].path);
    EXPECT_EQ(back[i].bytes, files[i].bytes) << files[i].path;
  }
}

TEST(Archive, EmptyArchiveHoldsNoFiles) {
  EXPECT_TRUE(host::read_tar_gz(host::write_tar_gz({}), limit).empty());
}

TEST(Archive, ReadsUstarPrefixGnuLongNamesAndPax) {
  std::string tar;
  entry(tar, "file.txt", '0', "prefixed", "", "some/dir");
  std::string long_name = std::string(120, 'g') + "/gnu.txt";
  entry(tar, "././@LongLink", 'L', long_name + '\0');
  entry(tar, "truncated-name", '0', "gnu");
  pax_path(tar, std::string(130, 'p') + "/pax.txt");
  entry(tar, "short", '0', "pax");
  entry(tar, "dir/", '5');
  entry(tar, "./dot/slash.txt", '0', "dot");
  entry(tar, "pax-global", 'g', "9 a=b\n");
  auto files = host::read_tar_gz(finish(tar), limit);
  ASSERT_EQ(files.size(), 4u);
  EXPECT_EQ(files[0].path, "some/dir/file.txt");
  EXPECT_EQ(files[0].bytes, "prefixed");
  EXPECT_EQ(files[1].path, long_name);
  EXPECT_EQ(files[2].path, std::string(130, 'p') + "/pax.txt");
  EXPECT_EQ(files[2].bytes, "pax");
  EXPECT_EQ(files[3].path, "dot/slash.txt") << "a leading './' is dropped";
}

// --- unsafe entries: refused, and the message names the entry ---------------------------------

TEST(Archive, RefusesDotDot) {
  std::string tar;
  entry(tar, "index.html", '0', "ok");
  entry(tar, "assets/../../escape.html", '0', "evil");
  std::string e = refusal(finish(tar));
  EXPECT_NE(e.find("assets/../../escape.html"), std::string::npos) << e;
  EXPECT_NE(e.find(".."), std::string::npos) << e;
}

TEST(Archive, RefusesDotDotHiddenInAPaxPath) {
  std::string tar;
  pax_path(tar, "../outside.html");
  entry(tar, "innocent.html", '0', "evil");
  EXPECT_NE(refusal(finish(tar)).find("../outside.html"), std::string::npos);
}

TEST(Archive, RefusesDotDotHiddenInAGnuLongName) {
  std::string tar;
  std::string name = std::string(110, 'a') + "/../../../etc/cron.d/x";
  entry(tar, "././@LongLink", 'L', name + '\0');
  entry(tar, "innocent", '0', "evil");
  EXPECT_NE(refusal(finish(tar)).find(name), std::string::npos);
}

TEST(Archive, RefusesAbsolutePaths) {
  std::string tar;
  entry(tar, "/etc/passwd", '0', "root::0:0");
  std::string e = refusal(finish(tar));
  EXPECT_NE(e.find("'/etc/passwd'"), std::string::npos) << e;
  EXPECT_NE(e.find("absolute"), std::string::npos) << e;
}

TEST(Archive, RefusesAbsolutePathsAfterDotSlash) {
  std::string tar;
  entry(tar, ".//etc/passwd", '0', "x");
  EXPECT_NE(refusal(finish(tar)).find("etc/passwd"), std::string::npos);
}

TEST(Archive, RefusesSymlinks) {
  std::string tar;
  entry(tar, "index.html", '0', "ok");
  entry(tar, "assets/passwd", '2', "", "/etc/passwd");
  std::string e = refusal(finish(tar));
  EXPECT_NE(e.find("'assets/passwd'"), std::string::npos) << e;
  EXPECT_NE(e.find("symlink"), std::string::npos) << e;
}

TEST(Archive, RefusesHardLinks) {
  std::string tar;
  entry(tar, "hard.html", '1', "", "../../etc/shadow");
  std::string e = refusal(finish(tar));
  EXPECT_NE(e.find("'hard.html'"), std::string::npos) << e;
  EXPECT_NE(e.find("hard link"), std::string::npos) << e;
}

TEST(Archive, RefusesDevicesAndFifos) {
  for (char type : {'3', '4', '6'}) {
    std::string tar;
    entry(tar, "dev-entry", type);
    std::string e = refusal(finish(tar));
    EXPECT_NE(e.find("'dev-entry'"), std::string::npos) << e;
    EXPECT_NE(e.find("not a regular file"), std::string::npos) << e;
  }
}

TEST(Archive, RefusesControlBytesAndBackslashes) {
  for (std::string name :
       {std::string("a\\..\\b"), std::string("new\nline.html"), std::string("a//b")}) {
    std::string tar;
    entry(tar, name, '0', "x");
    EXPECT_THROW(host::read_tar_gz(finish(tar), limit), std::invalid_argument) << name;
  }
}

// --- malformed and oversized input ---------------------------------------------------------------

TEST(Archive, RefusesDataThatIsNotGzip) {
  std::string e = refusal("this is not gzip at all");
  EXPECT_NE(e.find("gzip"), std::string::npos) << e;
}

TEST(Archive, RefusesTruncatedGzip) {
  std::string whole = host::write_tar_gz({{"a.txt", std::string(100000, 'a')}});
  EXPECT_THROW(host::read_tar_gz(whole.substr(0, whole.size() / 2), limit), std::invalid_argument);
}

TEST(Archive, RefusesAnEntryLongerThanTheArchive) {
  std::string tar;
  entry(tar, "big.bin", '0', std::string(2048, 'b'));
  tar.resize(512 + 1024);  // the header promises 2048 bytes; 1024 follow
  std::string e = refusal(gzip(tar));
  EXPECT_NE(e.find("'big.bin'"), std::string::npos) << e;
}

// A small archive that inflates to far more than the limit: reading stops at
// the limit instead of filling memory.
TEST(Archive, GzipBombStopsAtTheLimit) {
  std::string tar;
  entry(tar, "zeros.bin", '0', std::string(64 * 1024 * 1024, '\0'));
  std::string bomb = gzip(tar, 9);
  ASSERT_LT(bomb.size(), 200u * 1024);
  try {
    host::read_tar_gz(bomb, 1024 * 1024);
    FAIL() << "expected std::length_error";
  } catch (const std::length_error& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(1024 * 1024)), std::string::npos)
        << e.what();
  }
}

TEST(Archive, ExactlyAtTheLimitIsAccepted) {
  std::string tar;
  entry(tar, "a.bin", '0', std::string(1000, 'a'));
  tar.append(1024, '\0');
  EXPECT_EQ(host::read_tar_gz(gzip(tar), tar.size()).size(), 1u);
  EXPECT_THROW(host::read_tar_gz(gzip(tar), tar.size() - 1), std::length_error);
}
