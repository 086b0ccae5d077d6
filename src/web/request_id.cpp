#include <atoll/web/request_id.hpp>

#include <sys/random.h>

#include <cstdint>
#include <cstdio>

namespace atl::web {

std::string make_request_id() {
  thread_local std::uint64_t prefix = [] {
    std::uint64_t r = 0;
    if (getrandom(&r, sizeof r, 0) != sizeof r) r = std::uint64_t(reinterpret_cast<std::uintptr_t>(&r)) ^ 0x9e3779b97f4a7c15u;
    return r;
  }();
  thread_local std::uint32_t counter = 0;
  char buf[24];
  std::snprintf(buf, sizeof buf, "%012llx%08x", static_cast<unsigned long long>(prefix & 0xffffffffffffULL), ++counter);
  return buf;
}

bool is_sane_request_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > 128) return false;
  for (unsigned char c : id)
    if (!(std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == ':')) return false;
  return true;
}

Middleware request_id(RequestIdOptions options) {
  return [options = std::move(options)](Conn& c, const App& next) -> Task<> {
    std::string_view incoming = c.header(options.header);
    if (options.trust_incoming && is_sane_request_id(incoming)) c.request_id.assign(incoming);
    else c.request_id = make_request_id();
    c.response_headers().set(options.header, c.request_id);
    co_await next(c);
  };
}

}  // namespace atl::web
