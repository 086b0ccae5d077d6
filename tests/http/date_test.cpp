// HTTP dates: IMF-fixdate parsing and formatting (RFC 9110 §5.6.7).
#include <atoll/http/date.hpp>

#include <gtest/gtest.h>

#include <limits>
#include <string>

using atl::http::format_http_date;
using atl::http::parse_http_date;

namespace {

std::string formatted(long t) {
  char buf[29];
  format_http_date(t, buf);
  return std::string(buf, sizeof buf);
}

}  // namespace

TEST(HttpDate, FormatsImfFixdate) {
  EXPECT_EQ(formatted(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(formatted(0), "Thu, 01 Jan 1970 00:00:00 GMT");
}

TEST(HttpDate, ParsesWhatItFormats) {
  EXPECT_EQ(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
  EXPECT_EQ(parse_http_date("Thu, 29 Feb 2024 23:59:59 GMT"), 1709251199);
  EXPECT_EQ(parse_http_date("Mon, 01 Jan 1900 00:00:00 GMT"), -2208988800L);
  EXPECT_EQ(parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT"), 253402300799L);
  for (long t : {0L, 784111777L, 1700000000L, 4102444800L})
    EXPECT_EQ(parse_http_date(formatted(t)), t) << formatted(t);
}

TEST(HttpDate, RefusesOtherForms) {
  for (std::string_view bad : {
           "Sunday, 06-Nov-94 08:49:37 GMT",  // RFC 850
           "Sun Nov  6 08:49:37 1994",        // asctime
           "Sun, 06 Nov 1994 08:49:37 UTC",
           "Sun, 06 nov 1994 08:49:37 GMT",
           "Sun, 06 Nov 1899 08:49:37 GMT",
       })
    EXPECT_EQ(parse_http_date(bad), std::nullopt) << bad;
}

// Found by header_fuzz: any byte passed for the separators, and a month of
// NULs matched January, so strings that are not dates named a time.
TEST(HttpDate, RefusesWrongSeparatorsAndMonths) {
  for (std::string_view bad : {
           "Mon, 01 Jan)3800 00:00:00 GMT",
           "Sun, 06xNov 1994 08:49:37 GMT",
           "Sun, 06 Nov 1994 08-49-37 GMT",
           "Sun; 06 Nov 1994 08:49:37 GMT",
           "Sun, 06 anF 1994 08:49:37 GMT",
       })
    EXPECT_EQ(parse_http_date(bad), std::nullopt) << bad;
  EXPECT_EQ(parse_http_date(std::string_view("Sun, 06 \0\0\0 1994 08:49:37 GMT", 29)),
            std::nullopt);
  EXPECT_EQ(parse_http_date(std::string_view("Sun, 06 N\0\0 1994 08:49:37 GMT", 29)), std::nullopt);
}

// header_fuzz's round trip (a date taken formats back to itself) failed on
// these: fields out of range were carried into another date ("31 Feb" became
// 2 March), so a date that names no second was taken for one.
TEST(HttpDate, RefusesFieldsOutOfRange) {
  for (std::string_view bad : {
           "Sat, 31 Feb 2024 00:00:00 GMT",
           "Sun, 00 Nov 1994 08:49:37 GMT",
           "Sun, 32 Jan 1994 08:49:37 GMT",
           "Sun, 06 Nov 1994 24:00:00 GMT",
           "Sun, 06 Nov 1994 08:60:00 GMT",
           "Sun, 06 Nov 1994 08:49:60 GMT",
           "Sun, 29 Feb 2023 08:49:37 GMT",
       })
    EXPECT_EQ(parse_http_date(bad), std::nullopt) << bad;
}

// Caught by header_fuzz's format check: a time past gmtime_r()'s range left
// the broken-down time uninitialised and indexed the month names with it
// (UBSan: index out of bounds), and a year past 9999 or before 0 wrote bytes
// that are no date.
TEST(HttpDate, FormatsTimesOutOfRangeAsItsEnds) {
  EXPECT_EQ(formatted(253402300799L), "Fri, 31 Dec 9999 23:59:59 GMT");
  EXPECT_EQ(formatted(253402300800L), "Fri, 31 Dec 9999 23:59:59 GMT");
  EXPECT_EQ(formatted(100000000000000000L), "Fri, 31 Dec 9999 23:59:59 GMT");
  EXPECT_EQ(formatted(std::numeric_limits<long>::max()), "Fri, 31 Dec 9999 23:59:59 GMT");
  EXPECT_EQ(formatted(-2208988800L), "Mon, 01 Jan 1900 00:00:00 GMT");
  EXPECT_EQ(formatted(-100000000000L), "Mon, 01 Jan 1900 00:00:00 GMT");
  EXPECT_EQ(formatted(std::numeric_limits<long>::min()), "Mon, 01 Jan 1900 00:00:00 GMT");
}
