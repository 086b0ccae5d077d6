#pragma once
// Blocking loopback clients for tests: plain sockets, no atoll code, so a
// test checks atoll against the kernel's view of the bytes.
#include <chrono>
#include <cstdint>
#include <functional>
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

/// Polls `done` every few milliseconds until it holds or `timeout_ms` passes;
/// returns its last value. For conditions only observable by asking (a
/// server's counters), never as a stand-in for a condition one can wait on.
bool wait_until(const std::function<bool()>& done, int timeout_ms = 5000);
/// True if `fd` has bytes (or EOF) to read within `timeout_ms` (0: right now).
bool readable_within(int fd, int timeout_ms);
/// Makes a fresh private directory under $TMPDIR (or /tmp); the caller removes it.
std::string make_temp_dir();

/// Owns a descriptor and closes it on scope exit, so a failed assertion
/// does not leak client sockets into the next test.
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    reset(o.release());
    return *this;
  }
  ~UniqueFd() { reset(); }
  int get() const noexcept { return fd_; }
  int release() noexcept {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1) noexcept;
  explicit operator bool() const noexcept { return fd_ >= 0; }

 private:
  int fd_;
};

/// Milliseconds since construction, on the steady clock.
class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  double elapsed_ms() const {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_)
        .count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

}  // namespace atl::test
