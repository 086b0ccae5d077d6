#include <atoll/net/address.hpp>

#include <arpa/inet.h>

#include <charconv>
#include <cstring>
#include <stdexcept>

namespace atl::net {

namespace {

std::string ip_text(const sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN] = "";
  if (sa->sa_family == AF_INET)
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof buf);
  else if (sa->sa_family == AF_INET6)
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, buf, sizeof buf);
  return buf;
}

std::string with_port(const sockaddr* sa, std::uint16_t port) {
  if (sa->sa_family == AF_INET6) return "[" + ip_text(sa) + "]:" + std::to_string(port);
  if (sa->sa_family == AF_INET) return ip_text(sa) + ":" + std::to_string(port);
  return "unknown";
}

}  // namespace

Endpoint Endpoint::ip(std::string_view address, std::uint16_t port) {
  Endpoint e;
  std::string a(address);
  if (inet_pton(AF_INET, a.c_str(), &e.addr_.in4.sin_addr) == 1) {
    e.addr_.in4.sin_family = AF_INET;
    e.addr_.in4.sin_port = htons(port);
    e.len_ = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, a.c_str(), &e.addr_.in6.sin6_addr) == 1) {
    e.addr_.in6.sin6_family = AF_INET6;
    e.addr_.in6.sin6_port = htons(port);
    e.len_ = sizeof(sockaddr_in6);
  } else {
    throw std::invalid_argument("'" + a + "' is not an IPv4 or IPv6 address");
  }
  return e;
}

Endpoint Endpoint::unix_path(std::string_view path) {
  Endpoint e;
  if (path.empty() || path.size() >= sizeof(e.addr_.un.sun_path))
    throw std::invalid_argument("Unix socket path '" + std::string(path) + "' must be 1 to " +
                                std::to_string(sizeof(e.addr_.un.sun_path) - 1) + " bytes long");
  e.addr_.un.sun_family = AF_UNIX;
  std::memcpy(e.addr_.un.sun_path, path.data(), path.size());
  e.len_ = socklen_t(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return e;
}

Endpoint Endpoint::parse(std::string_view text) {
  if (text.rfind("unix:", 0) == 0) return unix_path(text.substr(5));
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos)
    throw std::invalid_argument("'" + std::string(text) +
                                "' is not an address: expected ADDR:PORT, [IPv6]:PORT or "
                                "unix:PATH");
  std::string_view host = text.substr(0, colon), port_text = text.substr(colon + 1);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc{} || end != port_text.data() + port_text.size() || port > 65535 ||
      port_text.empty())
    throw std::invalid_argument("'" + std::string(text) + "': port '" + std::string(port_text) +
                                "' is not a number from 0 to 65535");
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  try {
    return ip(host, std::uint16_t(port));
  } catch (const std::invalid_argument&) {
    if (host == "localhost") return ip("127.0.0.1", std::uint16_t(port));
    throw std::invalid_argument("'" + std::string(text) + "': '" + std::string(host) +
                                "' is not an IPv4 or IPv6 address (use 127.0.0.1, [::1], "
                                "0.0.0.0 or [::])");
  }
}

Endpoint Endpoint::from_sockaddr(const sockaddr* sa, socklen_t len) {
  Endpoint e;
  std::memcpy(&e.addr_, sa, std::min<std::size_t>(len, sizeof e.addr_));
  e.len_ = len;
  return e;
}

Endpoint Endpoint::local_of(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (fd < 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) return {};
  return from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
}

std::uint16_t Endpoint::port() const noexcept {
  if (family() == AF_INET) return ntohs(addr_.in4.sin_port);
  if (family() == AF_INET6) return ntohs(addr_.in6.sin6_port);
  return 0;
}

void Endpoint::set_port(std::uint16_t port) noexcept {
  if (family() == AF_INET) addr_.in4.sin_port = htons(port);
  if (family() == AF_INET6) addr_.in6.sin6_port = htons(port);
}

std::string Endpoint::to_string() const {
  if (is_unix()) return std::string("unix:") + addr_.un.sun_path;
  return with_port(&addr_.sa, port());
}

std::string Endpoint::host() const {
  if (is_unix()) return addr_.un.sun_path;
  return ip_text(&addr_.sa);
}

void PeerAddress::assign(const sockaddr* sa, socklen_t len) noexcept {
  if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6)
    std::memcpy(&addr_, sa, std::min<std::size_t>(len, sizeof addr_));
  else
    addr_.sa.sa_family = sa->sa_family;
}

std::string PeerAddress::to_string() const {
  if (family() == AF_UNIX) return "unix";
  return with_port(&addr_.sa, port());
}

std::string PeerAddress::host() const {
  if (family() == AF_UNIX) return "unix";
  return ip_text(&addr_.sa);
}

std::uint16_t PeerAddress::port() const noexcept {
  if (family() == AF_INET) return ntohs(addr_.in4.sin_port);
  if (family() == AF_INET6) return ntohs(addr_.in6.sin6_port);
  return 0;
}

}  // namespace atl::net
