#include "http/date.hpp"

#include <ctime>

namespace atl::http {

void format_http_date(long t, char* out) noexcept {
  static constexpr char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::time_t tt = t;
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

}  // namespace atl::http
