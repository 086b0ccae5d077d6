#include <atoll/web/request_checks.hpp>

#include <atoll/http/headers.hpp>

#include <cstdlib>
#include <string>

namespace atl::web {

double accepted_quality(std::string_view header, std::string_view coding) noexcept {
  double star = 0;
  std::size_t pos = 0;
  while (pos <= header.size()) {
    std::size_t comma = header.find(',', pos);
    std::string_view item =
        header.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    pos = comma == std::string_view::npos ? header.size() + 1 : comma + 1;
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    std::size_t semi = item.find(';');
    std::string_view name = item.substr(0, semi);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
    double q = 1;
    if (semi != std::string_view::npos) {
      std::string_view params = item.substr(semi + 1);
      if (auto qp = params.find("q="); qp != std::string_view::npos) {
        char buf[8] = {};
        params.substr(qp + 2, sizeof buf - 1).copy(buf, sizeof buf - 1);
        q = std::strtod(buf, nullptr);
      }
    }
    if (http::iequals(name, coding)) return q;
    if (name == "*") star = q;
  }
  return star;
}

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

}  // namespace atl::web
