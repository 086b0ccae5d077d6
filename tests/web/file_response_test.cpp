// etag_list_matches: If-Match and If-None-Match compare entity tags, not
// substrings (RFC 9110 §8.8.3.2, §13.1.1, §13.1.2).
#include <atoll/web/file_response.hpp>

#include <gtest/gtest.h>

using atl::web::etag_list_matches;

namespace {
constexpr std::string_view tag = "\"3f2a9c1e\"";
}

TEST(EtagList, ExactTagsMatch) {
  EXPECT_TRUE(etag_list_matches("\"3f2a9c1e\"", tag, false));
  EXPECT_TRUE(etag_list_matches("\"x\", \"3f2a9c1e\"", tag, false));
  EXPECT_TRUE(etag_list_matches("\"x\",\"3f2a9c1e\" ,\"y\"", tag, true));
  EXPECT_TRUE(etag_list_matches("  *  ", tag, false));
}

TEST(EtagList, PrefixesSubstringsAndSupersetsDoNotMatch) {
  for (std::string_view list :
       {"\"3f2a\"", "\"3f2a9c1e0\"", "\"x3f2a9c1e\"", "3f2a9c1e", "\"3f2a9c1e",
        "\"a\" \"3f2a9c1e\"", "\"x\"; \"3f2a9c1e\"", "", "**", "*, \"x\""})
    EXPECT_FALSE(etag_list_matches(list, tag, true)) << list;
}

TEST(EtagList, WeakTagsMatchOnlyByWeakComparison) {
  EXPECT_TRUE(etag_list_matches("W/\"3f2a9c1e\"", tag, true));
  EXPECT_FALSE(etag_list_matches("W/\"3f2a9c1e\"", tag, false));
  EXPECT_TRUE(etag_list_matches("W/\"x\", \"3f2a9c1e\"", tag, false));
}

TEST(EtagList, CommasInsideATagAreItsOwn) {
  EXPECT_TRUE(etag_list_matches("\"a,b\", \"3f2a9c1e\"", tag, false));
  EXPECT_TRUE(etag_list_matches("\"a,b\"", "\"a,b\"", false));
  EXPECT_FALSE(etag_list_matches("\"a,b\"", "\"a\"", true));
}
