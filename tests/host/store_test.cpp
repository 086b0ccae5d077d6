// ContentStore: blobs named by their SHA-256, written whole or not at all.
#include <atoll/host/store.hpp>

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include "host/temp_dir.hpp"

using namespace atl;
using namespace atl::test;

namespace {

std::size_t files_in(const std::string& dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++n;
  return n;
}

}  // namespace

TEST(Sha256, KnownDigests) {
  EXPECT_EQ(host::sha256_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(host::sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, HexRecogniser) {
  EXPECT_TRUE(host::is_sha256_hex(host::sha256_hex("x")));
  EXPECT_FALSE(host::is_sha256_hex(""));
  EXPECT_FALSE(host::is_sha256_hex(std::string(63, 'a')));
  EXPECT_FALSE(host::is_sha256_hex(std::string(65, 'a')));
  EXPECT_FALSE(host::is_sha256_hex(std::string(64, 'A')));  // lowercase only: one name per blob
  EXPECT_FALSE(host::is_sha256_hex(std::string(63, 'a') + "g"));
  EXPECT_FALSE(host::is_sha256_hex("../" + std::string(61, 'a')));
}

TEST(ContentStore, PutStoresUnderItsHash) {
  TempDir d;
  host::ContentStore store(d.path());
  std::string h = store.put("hello blob\n");
  EXPECT_EQ(h, host::sha256_hex("hello blob\n"));
  EXPECT_TRUE(store.has(h));
  EXPECT_EQ(store.path(h), d.path() + "/blobs/" + h.substr(0, 2) + "/" + h.substr(2));
  EXPECT_EQ(slurp(store.path(h)), "hello blob\n");
  EXPECT_EQ(store.size(h), 11u);
}

TEST(ContentStore, PutIsIdempotentAndDoesNotRewrite) {
  TempDir d;
  host::ContentStore store(d.path());
  std::string h = store.put("same bytes");
  struct stat before;
  ASSERT_EQ(::stat(store.path(h).c_str(), &before), 0);
  EXPECT_EQ(store.put("same bytes"), h);
  struct stat after;
  ASSERT_EQ(::stat(store.path(h).c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino) << "a stored blob is never replaced";
  EXPECT_EQ(store.list().size(), 1u);
}

TEST(ContentStore, EmptyBlob) {
  TempDir d;
  host::ContentStore store(d.path());
  std::string h = store.put("");
  EXPECT_TRUE(store.has(h));
  EXPECT_EQ(store.size(h), 0u);
}

TEST(ContentStore, PutVerifiedAcceptsMatchingBytes) {
  TempDir d;
  host::ContentStore store(d.path());
  std::string bytes = "verified";
  EXPECT_TRUE(store.put_verified(host::sha256_hex(bytes), bytes));
  EXPECT_TRUE(store.has(host::sha256_hex(bytes)));
}

TEST(ContentStore, PutVerifiedRefusesWrongBytesAndStoresNothing) {
  TempDir d;
  host::ContentStore store(d.path());
  std::string claimed = host::sha256_hex("what the client said");
  EXPECT_FALSE(store.put_verified(claimed, "what the client sent"));
  EXPECT_FALSE(store.has(claimed));
  EXPECT_FALSE(store.has(host::sha256_hex("what the client sent")));
  EXPECT_TRUE(store.list().empty());
  EXPECT_EQ(files_in(d / "tmp"), 0u);
}

TEST(ContentStore, PutVerifiedRefusesNamesThatAreNotDigests) {
  TempDir d;
  host::ContentStore store(d.path());
  std::string h = host::sha256_hex("x");
  std::string upper = h;
  std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
  EXPECT_FALSE(store.put_verified(upper, "x"));
  EXPECT_FALSE(store.put_verified("../../etc/passwd", "x"));
  EXPECT_FALSE(store.put_verified("", "x"));
  EXPECT_TRUE(store.list().empty());
}

TEST(ContentStore, HasAndSizeRefuseNonDigests) {
  TempDir d;
  host::ContentStore store(d.path());
  d.write("blobs/ab/c", "not a blob");
  EXPECT_FALSE(store.has("abc"));
  EXPECT_FALSE(store.size("abc"));
  EXPECT_FALSE(store.has(host::sha256_hex("never stored")));
  EXPECT_FALSE(store.size(host::sha256_hex("never stored")));
}

TEST(ContentStore, ListReturnsEveryBlobAndNothingElse) {
  TempDir d;
  host::ContentStore store(d.path());
  std::vector<std::string> put;
  for (int i = 0; i < 50; ++i) put.push_back(store.put("blob " + std::to_string(i)));
  d.write("blobs/README", "stray file");
  d.write("blobs/zz/not-hex", "stray file");
  auto listed = store.list();
  std::sort(put.begin(), put.end());
  std::sort(listed.begin(), listed.end());
  EXPECT_EQ(listed, put);
}

TEST(ContentStore, Remove) {
  TempDir d;
  host::ContentStore store(d.path());
  std::string keep = store.put("keep");
  std::string drop = store.put("drop");
  EXPECT_TRUE(store.remove(drop));
  EXPECT_FALSE(store.has(drop));
  EXPECT_TRUE(store.has(keep));
  EXPECT_FALSE(store.remove(drop)) << "already gone";
  EXPECT_FALSE(store.remove("not-a-digest"));
  EXPECT_EQ(store.list(), std::vector<std::string>{keep});
}

TEST(ContentStore, ReopeningSeesTheSameBlobs) {
  TempDir d;
  std::string h;
  {
    host::ContentStore store(d.path());
    h = store.put("persisted");
  }
  host::ContentStore again(d.path());
  EXPECT_TRUE(again.has(h));
  EXPECT_EQ(slurp(again.path(h)), "persisted");
}

TEST(ContentStore, ConstructorNamesTheDirectoryItCannotCreate) {
  TempDir d;
  d.write("a-file", "x");
  try {
    host::ContentStore store(d / "a-file/store");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(d / "a-file/store"), std::string::npos) << e.what();
  }
}

// The write goes through tmp/ and a rename: once a blob is visible under its
// name it is whole, and a writer that fails leaves neither a blob nor a
// temporary file.
TEST(ContentStore, ReaderNeverSeesAPartialBlob) {
  TempDir d;
  host::ContentStore store(d.path());
  std::string big(8 * 1024 * 1024, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = char(i * 7 + i / 4096);
  std::string h = host::sha256_hex(big);
  std::atomic<bool> done{false};
  std::atomic<int> partial{0}, seen{0};
  std::thread reader([&] {
    while (!done.load()) {
      if (!store.has(h)) continue;
      ++seen;
      if (store.size(h) != big.size()) ++partial;
    }
  });
  store.put(big);
  done = true;
  reader.join();
  EXPECT_EQ(partial.load(), 0);
  EXPECT_EQ(store.size(h), big.size());
  EXPECT_EQ(host::sha256_hex(slurp(store.path(h))), h);
  EXPECT_EQ(files_in(d / "tmp"), 0u) << "the temporary file was renamed into place";
}

TEST(ContentStore, ConcurrentPutsOfOneBlobAllSucceed) {
  TempDir d;
  host::ContentStore store(d.path());
  std::string bytes(1024 * 1024, 'q');
  std::string h = host::sha256_hex(bytes);
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 6; ++i)
    threads.emplace_back([&] {
      if (store.put(bytes) == h) ++ok;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 6);
  EXPECT_EQ(slurp(store.path(h)), bytes);
  EXPECT_EQ(files_in(d / "tmp"), 0u);
}

TEST(ContentStore, FailedWriteLeavesNothing) {
  TempDir d;
  host::ContentStore store(d.path());
  std::string bytes = "cannot land";
  std::string h = host::sha256_hex(bytes);
  // The blob's fan-out directory is a file: the final rename must fail.
  d.write("blobs/" + h.substr(0, 2), "in the way");
  EXPECT_THROW(store.put(bytes), std::runtime_error);
  EXPECT_FALSE(store.has(h));
  EXPECT_EQ(files_in(d / "tmp"), 0u) << "the temporary file was removed";
}

TEST(ContentStore, PutManyStoresEachOnceAndLeavesNoTemporaries) {
  TempDir d;
  host::ContentStore store(d.path());
  std::string a = "first blob", b = "second blob";
  std::string ha = host::sha256_hex(a), hb = host::sha256_hex(b);
  store.put(a);
  EXPECT_EQ(store.put_many({{ha, a}, {hb, b}, {hb, b}}), 1u) << "only the new one, once";
  EXPECT_EQ(slurp(store.path(hb)), b);
  EXPECT_TRUE(std::filesystem::is_empty(d / "tmp"));
  EXPECT_THROW(store.put_many({{"not-a-hash", b}}), std::invalid_argument);
  EXPECT_TRUE(std::filesystem::is_empty(d / "tmp"));
}
