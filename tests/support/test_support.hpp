#pragma once
// Blocking loopback clients for tests: plain sockets, no atoll code, so a
// test checks atoll against the kernel's view of the bytes.
#include <cstdint>
#include <string>

namespace atl::test {

/// Connects to 127.0.0.1:port (or `host`); returns the descriptor or -1.
int connect_tcp(std::uint16_t port, const char* host = "127.0.0.1");
int connect_unix(const std::string& path);
/// Writes all of `data`; false on error.
bool send_all(int fd, const std::string& data);
/// Reads until `n` bytes arrived, EOF, or `timeout_ms` passed.
std::string recv_n(int fd, std::size_t n, int timeout_ms = 5000);
/// Reads until EOF or `timeout_ms`.
std::string recv_all(int fd, int timeout_ms = 5000);
/// True if the peer closed (EOF or reset) within `timeout_ms`.
bool wait_closed(int fd, int timeout_ms);
/// Where the test certificates are (ATOLL_TEST_CERTS).
std::string cert_dir();

}  // namespace atl::test
