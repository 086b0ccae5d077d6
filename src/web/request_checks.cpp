#include <atoll/web/request_checks.hpp>

#include <atoll/http/headers.hpp>

#include <algorithm>
#include <cstdlib>
#include <string>

namespace atl::web {

bool is_safe_path(std::string_view p) noexcept {
  if (p.empty() || p.front() != '/') return false;
  if (p.find('\0') != std::string_view::npos || p.find('\\') != std::string_view::npos)
    return false;
  std::size_t i = 0;
  while (i < p.size()) {
    std::size_t j = p.find('/', i + 1);
    std::string_view seg =
        p.substr(i + 1, j == std::string_view::npos ? std::string_view::npos : j - i - 1);
    if (seg == ".." || seg == ".") return false;
    if (j == std::string_view::npos) break;
    i = j;
  }
  return true;
}

bool parse_ranges(std::string_view h, std::uint64_t size, std::size_t max,
                  std::vector<ByteRange>& out) {
  if (!h.starts_with("bytes=")) return false;
  h.remove_prefix(6);
  std::size_t count = 0;
  while (!h.empty()) {
    std::size_t comma = h.find(',');
    std::string_view spec = h.substr(0, comma);
    h = comma == std::string_view::npos ? std::string_view{} : h.substr(comma + 1);
    while (!spec.empty() && spec.front() == ' ') spec.remove_prefix(1);
    while (!spec.empty() && spec.back() == ' ') spec.remove_suffix(1);
    if (spec.empty()) continue;
    if (++count > max) return false;
    std::size_t dash = spec.find('-');
    if (dash == std::string_view::npos) return false;
    auto number = [](std::string_view s, std::uint64_t& v) {
      if (s.empty() || s.size() > 19) return false;  // 19 digits cannot overflow 64 bits
      v = 0;
      for (char c : s) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + std::uint64_t(c - '0');
      }
      return true;
    };
    std::uint64_t a = 0, b = 0;
    if (dash == 0) {  // suffix: the last b bytes
      if (!number(spec.substr(1), b)) return false;
      if (b == 0 || size == 0) continue;
      out.push_back({b >= size ? 0 : size - b, size - 1});
      continue;
    }
    if (!number(spec.substr(0, dash), a)) return false;
    if (dash + 1 == spec.size())
      b = size ? size - 1 : 0;
    else if (!number(spec.substr(dash + 1), b))
      return false;
    if (b < a) return false;
    if (a >= size) continue;
    out.push_back({a, std::min(b, size - 1)});
  }
  // "bytes=" or "bytes=," names no range at all: not a valid byte-range-set
  // (RFC 9110 §14.1.2, 1#range-spec), so the header is ignored, not a 416.
  return count > 0;
}

}  // namespace atl::web
