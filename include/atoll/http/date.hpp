#pragma once
// The Date header value, formatted at most once per second per thread.
#include <optional>
#include <string_view>

namespace atl::http {
/// "Sun, 06 Nov 1994 08:49:37 GMT" for now (RFC 9110 IMF-fixdate).
std::string_view http_date_now() noexcept;
/// Formats `t` (seconds since the epoch) as an IMF-fixdate into `out` (29 bytes);
/// a time before 1900 or after 9999 is written as the first or last second of that range.
void format_http_date(long t, char* out) noexcept;
/// Parses an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") of a year from
/// 1900 to 9999; nullopt otherwise: a field out of range ("31 Feb", "24:00"),
/// and the obsolete RFC 850 and asctime forms, are not accepted.
std::optional<long> parse_http_date(std::string_view text) noexcept;
}  // namespace atl::http
