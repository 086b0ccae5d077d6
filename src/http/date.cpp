#include <atoll/http/date.hpp>

#include <algorithm>
#include <ctime>

namespace atl::http {

void format_http_date(long t, char* out) noexcept {
  static constexpr char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  // Four year digits and parse_http_date() take 1900 to 9999: a time outside
  // (a file dated by a broken clock) is written as the nearest end. Unclamped,
  // a far year wrote bytes that are no date, and one past gmtime_r()'s range
  // indexed the day and month names with uninitialised fields.
  std::time_t tt = std::clamp(t, -2208988800L, 253402300799L);
  std::tm tm;
  gmtime_r(&tt, &tm);
  auto two = [](char* p, int v) {
    p[0] = char('0' + v / 10);
    p[1] = char('0' + v % 10);
  };
  char* p = out;
  for (int i = 0; i < 3; ++i) *p++ = days[tm.tm_wday][i];
  *p++ = ',';
  *p++ = ' ';
  two(p, tm.tm_mday);
  p += 2;
  *p++ = ' ';
  for (int i = 0; i < 3; ++i) *p++ = months[tm.tm_mon][i];
  *p++ = ' ';
  int y = tm.tm_year + 1900;
  two(p, y / 100);
  two(p + 2, y % 100);
  p += 4;
  *p++ = ' ';
  two(p, tm.tm_hour);
  p += 2;
  *p++ = ':';
  two(p, tm.tm_min);
  p += 2;
  *p++ = ':';
  two(p, tm.tm_sec);
  p += 2;
  *p++ = ' ';
  *p++ = 'G';
  *p++ = 'M';
  *p++ = 'T';
}

std::string_view http_date_now() noexcept {
  thread_local long cached_second = -1;
  thread_local char cached[29];
  timespec ts;
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  if (ts.tv_sec != cached_second) {
    cached_second = ts.tv_sec;
    format_http_date(ts.tv_sec, cached);
  }
  return {cached, sizeof cached};
}

std::optional<long> parse_http_date(std::string_view s) noexcept {
  // "Sun, 06 Nov 1994 08:49:37 GMT": fixed width, 29 bytes. Only what
  // format_http_date() writes is taken (the day name aside: the date fixes
  // it), so two different strings never name the same second by accident.
  static constexpr std::string_view months = "JanFebMarAprMayJunJulAugSepOctNovDec";
  if (s.size() != 29 || s.substr(3, 2) != ", " || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
      s[19] != ':' || s[22] != ':' || s.substr(25) != " GMT")
    return std::nullopt;
  auto num = [&](std::size_t at, std::size_t n) -> int {
    int v = 0;
    for (std::size_t i = 0; i < n; ++i) {
      char c = s[at + i];
      if (c < '0' || c > '9') return -1;
      v = v * 10 + (c - '0');
    }
    return v;
  };
  std::size_t month = months.find(s.substr(8, 3));
  if (month == std::string_view::npos || month % 3) return std::nullopt;
  std::tm tm{};
  tm.tm_mday = num(5, 2);
  tm.tm_mon = int(month / 3);
  tm.tm_year = num(12, 4) - 1900;
  tm.tm_hour = num(17, 2);
  tm.tm_min = num(20, 2);
  tm.tm_sec = num(23, 2);
  if (tm.tm_mday < 1 || tm.tm_year < 0 || tm.tm_hour < 0 || tm.tm_min < 0 || tm.tm_sec < 0)
    return std::nullopt;
  const std::tm given = tm;
  long t = long(timegm(&tm));
  // timegm() quietly carries "31 Feb" or "24:00:00" into another date: refuse them.
  if (tm.tm_mday != given.tm_mday || tm.tm_mon != given.tm_mon || tm.tm_year != given.tm_year ||
      tm.tm_hour != given.tm_hour || tm.tm_min != given.tm_min || tm.tm_sec != given.tm_sec)
    return std::nullopt;
  return t;
}

}  // namespace atl::http
