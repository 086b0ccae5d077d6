// Request checks: Accept-Encoding q-values, path safety and Range headers,
// as pure functions (the static-file and site-host tests cover them on the
// wire).
#include <atoll/web/request_checks.hpp>

#include <gtest/gtest.h>

#include <string>
#include <vector>

using atl::web::ByteRange;
using atl::web::is_safe_path;
using atl::web::parse_ranges;

namespace {

// The ranges as "a-b,c-d", or "ignored" when parse_ranges() returns false.
std::string ranges(std::string_view header, std::uint64_t size, std::size_t max = 16) {
  std::vector<ByteRange> out;
  if (!parse_ranges(header, size, max, out)) return "ignored";
  std::string s;
  for (const auto& r : out) {
    if (!s.empty()) s += ",";
    s += std::to_string(r.first) + "-" + std::to_string(r.last);
  }
  return s;
}

}  // namespace

TEST(RequestChecks, SafePaths) {
  EXPECT_TRUE(is_safe_path("/"));
  EXPECT_TRUE(is_safe_path("/a/b.c/..d"));
  for (std::string_view bad : {"", "a", "/..", "/a/../b", "/./a", "/a/.", "/a\\b"})
    EXPECT_FALSE(is_safe_path(bad)) << bad;
  EXPECT_FALSE(is_safe_path(std::string_view("/a\0b", 4)));
}

TEST(RequestChecks, SingleRanges) {
  EXPECT_EQ(ranges("bytes=0-4", 10), "0-4");
  EXPECT_EQ(ranges("bytes=5-", 10), "5-9");
  EXPECT_EQ(ranges("bytes=-3", 10), "7-9");
  EXPECT_EQ(ranges("bytes=-30", 10), "0-9");  // a suffix longer than the file is all of it
  EXPECT_EQ(ranges("bytes=8-100", 10), "8-9");
  EXPECT_EQ(ranges("bytes= 1-2 ", 10), "1-2");
}

TEST(RequestChecks, SeveralRanges) {
  EXPECT_EQ(ranges("bytes=0-0,2-3,-1", 10), "0-0,2-3,9-9");
  EXPECT_EQ(ranges("bytes=0-0,,20-30", 10), "0-0");  // empty items skipped, unsatisfiable dropped
}

TEST(RequestChecks, UnsatisfiableRangesAreEmpty) {
  EXPECT_EQ(ranges("bytes=10-20", 10), "");
  EXPECT_EQ(ranges("bytes=-0", 10), "");
  EXPECT_EQ(ranges("bytes=0-", 0), "");
}

TEST(RequestChecks, MalformedRangesAreIgnored) {
  for (std::string_view bad :
       {"", "items=0-1", "bytes=1", "bytes=a-b", "bytes=5-1", "bytes=0-1,x", "bytes=--1",
        "bytes=99999999999999999999-", "bytes=", "bytes=,", "bytes= , "})
    EXPECT_EQ(ranges(bad, 10), "ignored") << bad;
}

TEST(RequestChecks, TooManyRangesAreIgnored) {
  EXPECT_EQ(ranges("bytes=0-0,1-1,2-2", 10, 3), "0-0,1-1,2-2");
  EXPECT_EQ(ranges("bytes=0-0,1-1,2-2,3-3", 10, 3), "ignored");
  // Unsatisfiable ranges count too: they cost the parser as much.
  EXPECT_EQ(ranges("bytes=50-60,50-60,50-60,50-60", 10, 3), "ignored");
}

TEST(RequestChecks, LargestOffsets) {
  const std::uint64_t big = 18446744073709551615ull;  // 2^64 - 1
  EXPECT_EQ(ranges("bytes=9999999999999999999-", big), "9999999999999999999-18446744073709551614");
  EXPECT_EQ(ranges("bytes=-9999999999999999999", big), "8446744073709551616-18446744073709551614");
}
