// header_fuzz: the small parsers of request header values and paths.
//
// The first byte of an input picks the parser, the rest is its text:
//   q  web::negotiate_coding   an Accept-Encoding value
//   e  web::etag_list_matches  "LIST\nETAG" (an If-Match / If-None-Match value)
//   p  http::percent_decode_path, then web::is_safe_path on the result, as
//      the server does with a request path
//   u  http::QueryParams::parse (a query string)
//   d  http::parse_http_date, then format_http_date and back
//   t  http::format_http_date of the first 8 bytes as a time, then back
//   r  web::parse_ranges       "SIZE MAX\nRANGE" (a Range value)
// Each checks what its callers rely on: a decoded path holds no NUL and
// decodes back from its own encoding; a safe path has no segment that climbs
// or stays ("." or ".."), checked here by walking it; a date the parser
// takes is one the formatter writes, and every time formats as an
// IMF-fixdate; byte ranges lie inside the file and number at most MAX.
// A failed check is a crash.
//
//   cmake --preset fuzz && cmake --build build/fuzz && tests/fuzz/run.sh 60
#include <atoll/http/conn.hpp>
#include <atoll/http/date.hpp>
#include <atoll/http/headers.hpp>
#include <atoll/web/content_coding.hpp>
#include <atoll/web/file_response.hpp>
#include <atoll/web/request_checks.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

bool contains_ignoring_case(std::string_view s, std::string_view part) {
  for (std::size_t i = 0; i + part.size() <= s.size(); ++i)
    if (atl::http::iequals(s.substr(i, part.size()), part)) return true;
  return false;
}

void quality(std::string_view header) {
  using atl::web::ContentCoding;
  constexpr ContentCoding all[] = {ContentCoding::br, ContentCoding::zstd, ContentCoding::gzip};
  auto chosen = atl::web::negotiate_coding(header, all);
  // A header that names no coding we make, and has no "*", chooses none.
  if (header.find('*') == std::string_view::npos && !contains_ignoring_case(header, "br") &&
      !contains_ignoring_case(header, "zstd") && !contains_ignoring_case(header, "gzip"))
    check(!chosen);
  // Whatever is chosen is one of those offered: only gzip, then gzip or none.
  constexpr ContentCoding gzip_only[] = {ContentCoding::gzip};
  auto g = atl::web::negotiate_coding(header, gzip_only);
  check(!g || *g == ContentCoding::gzip);
}

void etags(std::string_view text) {
  std::size_t nl = text.find('\n');
  std::string_view list = text.substr(0, nl);
  std::string etag = nl == std::string_view::npos ? "\"x\"" : std::string(text.substr(nl + 1));
  bool strong = atl::web::etag_list_matches(list, etag, false);
  bool weak = atl::web::etag_list_matches(list, etag, true);
  check(!strong || weak);  // strong comparison is the stricter
  // Only "*" or a list naming the tag itself can match.
  if (weak && list.find('*') == std::string_view::npos) check(list.find(etag) != std::string::npos);
}

std::string percent_encode(std::string_view s) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += '%';
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

// True if walking `p` segment by segment never meets "." or "..", and it is
// absolute with no NUL or backslash: an independent statement of is_safe_path.
bool stays_inside(std::string_view p) {
  if (p.empty() || p.front() != '/') return false;
  for (char c : p)
    if (c == '\0' || c == '\\') return false;
  std::size_t start = 1;
  for (;;) {
    std::size_t end = p.find('/', start);
    std::string_view seg = p.substr(start, end == std::string_view::npos ? p.npos : end - start);
    if (seg == "." || seg == "..") return false;
    if (end == std::string_view::npos) return true;
    start = end + 1;
  }
}

void path(std::string_view raw) {
  atl::web::is_safe_path(raw);  // the raw bytes must not trip it either
  auto decoded = atl::http::percent_decode_path(raw);
  if (!decoded) return;
  check(decoded->find('\0') == std::string::npos);
  std::size_t escapes = 0;
  for (char c : raw) escapes += c == '%';
  check(decoded->size() == raw.size() - 2 * escapes);
  auto again = atl::http::percent_decode_path(percent_encode(*decoded));
  check(again && *again == *decoded);
  check(atl::web::is_safe_path(*decoded) == stays_inside(*decoded));
}

void query(std::string_view q) {
  auto params = atl::http::QueryParams::parse(q);
  std::size_t items = 1;
  for (char c : q) items += c == '&';
  check(params.all().size() <= items);
  for (const auto& [name, value] : params.all()) {
    auto first = params.get(name);
    check(first.has_value());
  }
}

// The first and last seconds an IMF-fixdate's four-digit year can hold that
// parse_http_date takes: 1900-01-01T00:00:00Z and 9999-12-31T23:59:59Z.
constexpr long first_date = -2208988800L;
constexpr long last_date = 253402300799L;

// "Sun, 06 Nov 1994 08:49:37 GMT", by the grammar alone.
bool is_imf_fixdate(std::string_view s) {
  static constexpr std::string_view days = "SunMonTueWedThuFriSat";
  static constexpr std::string_view months = "JanFebMarAprMayJunJulAugSepOctNovDec";
  auto digits = [&](std::size_t at, std::size_t n) {
    for (std::size_t i = at; i < at + n; ++i)
      if (s[i] < '0' || s[i] > '9') return false;
    return true;
  };
  if (s.size() != 29) return false;
  std::size_t day = days.find(s.substr(0, 3)), month = months.find(s.substr(8, 3));
  return day != days.npos && day % 3 == 0 && s.substr(3, 2) == ", " && digits(5, 2) &&
         s[7] == ' ' && month != months.npos && month % 3 == 0 && s[11] == ' ' && digits(12, 4) &&
         s[16] == ' ' && digits(17, 2) && s[19] == ':' && digits(20, 2) && s[22] == ':' &&
         digits(23, 2) && s.substr(25) == " GMT";
}

std::string formatted(long t) {
  char buf[29];
  atl::http::format_http_date(t, buf);
  return std::string(buf, sizeof buf);
}

void date(std::string_view text) {
  auto t = atl::http::parse_http_date(text);
  if (!t) return;
  check(*t >= first_date && *t <= last_date);
  std::string again = formatted(*t);
  check(is_imf_fixdate(again));
  // Only what the formatter writes is taken; the day name is not checked.
  check(again.substr(5) == text.substr(5));
  check(atl::http::parse_http_date(again) == t);
}

void time_value(std::string_view bytes) {
  std::int64_t t = 0;
  std::memcpy(&t, bytes.data(), std::min(bytes.size(), sizeof t));
  std::string text = formatted(long(t));
  check(is_imf_fixdate(text));
  if (t >= first_date && t <= last_date) check(atl::http::parse_http_date(text) == long(t));
}

void ranges(std::string_view text) {
  std::size_t nl = text.find('\n');
  if (nl == std::string_view::npos) return;
  std::string line(text.substr(0, nl));
  unsigned long long size = 0, max = 0;
  if (std::sscanf(line.c_str(), "%llu %llu", &size, &max) != 2) return;
  std::vector<atl::web::ByteRange> out;
  if (!atl::web::parse_ranges(text.substr(nl + 1), size, std::size_t(max), out)) return;
  check(out.size() <= max);
  for (const auto& r : out) check(r.first <= r.last && r.last < size);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0]) {
    case 'q':
      quality(text);
      break;
    case 'e':
      etags(text);
      break;
    case 'p':
      path(text);
      break;
    case 'u':
      query(text);
      break;
    case 'd':
      date(text);
      break;
    case 't':
      time_value(text);
      break;
    case 'r':
      ranges(text);
      break;
    default:
      break;
  }
  return 0;
}
