#pragma once
// Endpoint: an IPv4, IPv6 or Unix-socket address, parsed from text.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace atl::net {

class Endpoint {
 public:
  Endpoint() = default;
  /// Parses "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:0", ":8080" (all IPv4
  /// addresses) or "unix:/path/to.sock". Throws std::invalid_argument with a
  /// message that quotes the text and says what form was expected.
  static Endpoint parse(std::string_view text);
  /// An IP address ("127.0.0.1", "::1") with a port.
  static Endpoint ip(std::string_view address, std::uint16_t port);
  static Endpoint unix_path(std::string_view path);
  static Endpoint from_sockaddr(const sockaddr* sa, socklen_t len);
  /// The address a socket is bound to (getsockname); an empty Endpoint
  /// (valid() false, errno set) if `fd` is not a bound socket.
  static Endpoint local_of(int fd);
  /// False for a default-constructed or failed Endpoint.
  bool valid() const noexcept { return len_ != 0; }

  int family() const noexcept { return addr_.sa.sa_family; }
  bool is_unix() const noexcept { return family() == AF_UNIX; }
  std::uint16_t port() const noexcept;
  void set_port(std::uint16_t port) noexcept;
  const sockaddr* data() const noexcept { return &addr_.sa; }
  socklen_t size() const noexcept { return len_; }
  /// "127.0.0.1:8080", "[::1]:8080" or "unix:/path".
  std::string to_string() const;
  /// The address alone, without port ("127.0.0.1", "::1").
  std::string host() const;

 private:
  // The largest member first: `{}` initialises only the first member of a
  // union, and a Unix path's terminating NUL lies past a sockaddr's 16 bytes
  // (clang left it as stack garbage, so the socket got another name).
  union {
    sockaddr_un un;
    sockaddr sa;
    sockaddr_in in4;
    sockaddr_in6 in6;
  } addr_{};
  socklen_t len_ = 0;
};

/// A compact peer address kept for every connection (IPv4/IPv6 only; 28 bytes,
/// where a full Endpoint is 112): connection memory is a budget.
class PeerAddress {
 public:
  PeerAddress() noexcept { addr_.sa.sa_family = AF_UNSPEC; }
  void assign(const sockaddr* sa, socklen_t len) noexcept;
  int family() const noexcept { return addr_.sa.sa_family; }
  std::string to_string() const;
  std::string host() const;
  std::uint16_t port() const noexcept;

 private:
  union {  // the largest member first, as in Endpoint
    sockaddr_in6 in6;
    sockaddr sa;
    sockaddr_in in4;
  } addr_{};
};

}  // namespace atl::net
