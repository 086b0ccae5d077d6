#include <atoll/web/request_id.hpp>

#include <sys/random.h>

#include <cstdint>
#include <cstring>

namespace atl::web {

void make_request_id(std::string& out) {
  static constexpr char hex[] = "0123456789abcdef";
  // 12 hex digits fixed per thread (random), then a per-thread counter.
  struct Prefix {
    char digits[12];
    Prefix() {
      std::uint64_t r = 0;
      if (getrandom(&r, sizeof r, 0) != sizeof r)
        r = std::uint64_t(reinterpret_cast<std::uintptr_t>(&r)) ^ 0x9e3779b97f4a7c15u;
      for (int i = 11; i >= 0; --i, r >>= 4) digits[i] = hex[r & 15];
    }
  };
  thread_local Prefix prefix;
  thread_local std::uint32_t counter = 0;
  out.resize(20);
  char* p = out.data();
  std::memcpy(p, prefix.digits, 12);
  std::uint32_t low = ++counter;
  for (int i = 19; i >= 12; --i, low >>= 4) p[i] = hex[low & 15];
}

std::string make_request_id() {
  std::string id;
  make_request_id(id);
  return id;
}

bool is_sane_request_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > 128) return false;
  for (unsigned char c : id)
    if (!(std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == ':')) return false;
  return true;
}

Middleware request_id(RequestIdOptions options) {
  // A plain lambda that returns next's task: no coroutine frame of its own.
  return [options = std::move(options)](Conn& c, const App& next) {
    std::string_view incoming = c.header(options.header);
    if (options.trust_incoming && is_sane_request_id(incoming))
      c.request_id.assign(incoming);
    else
      make_request_id(c.request_id);
    c.response_headers().set(options.header, c.request_id);
    return next(c);
  };
}

}  // namespace atl::web
