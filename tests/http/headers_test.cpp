// ResponseHeaders as name/value pairs, whatever their storage.
#include <atoll/http/headers.hpp>

#include <gtest/gtest.h>

using atl::http::Header;
using atl::http::ResponseHeaders;

TEST(ResponseHeaders, IterateAsPairsInOrder) {
  ResponseHeaders h;
  h.set("Content-Type", "text/plain");
  h.add("Set-Cookie", "a=1");
  h.add("Set-Cookie", "b=2");
  h.add("X-Empty", "");
  std::vector<std::pair<std::string, std::string>> seen;
  for (Header x : h) seen.emplace_back(x.name, x.value);
  EXPECT_EQ(seen, (std::vector<std::pair<std::string, std::string>>{{"Content-Type", "text/plain"},
                                                                    {"Set-Cookie", "a=1"},
                                                                    {"Set-Cookie", "b=2"},
                                                                    {"X-Empty", ""}}));
  EXPECT_EQ(h.list().size(), 4u);
  EXPECT_EQ(h.list()[3].name, "X-Empty");
  h.remove("Set-Cookie");
  EXPECT_EQ(std::distance(h.begin(), h.end()), 2);
  ResponseHeaders none;
  EXPECT_EQ(none.begin(), none.end());
}
