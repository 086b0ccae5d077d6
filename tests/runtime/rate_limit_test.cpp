// PerSecondLimit: N events a second pass, the rest are counted, and the next
// one let through learns how many were turned away.
#include <atoll/runtime/rate_limit.hpp>

#include <gtest/gtest.h>

using atl::runtime::PerSecondLimit;

TEST(PerSecondLimit, LetsNThroughEachSecondAndCountsTheRest) {
  PerSecondLimit limit(3);
  EXPECT_EQ(limit.take(100), 0);
  EXPECT_EQ(limit.take(100), 0);
  EXPECT_EQ(limit.take(100), 0);
  EXPECT_EQ(limit.take(100), -1);
  EXPECT_EQ(limit.take(100), -1);
  EXPECT_EQ(limit.take(101), 2) << "the first of the next second says how many were left out";
  EXPECT_EQ(limit.take(101), 0) << "and the count starts again";
}
