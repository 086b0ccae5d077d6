#pragma once
// Buffer: a 16 KiB I/O buffer lent by the current thread's pool.
//
// Connections borrow a buffer only while they have bytes to hold, so an idle
// connection costs no buffer memory. 16 KiB matches one TLS record and is the
// size browsers' first requests fit in.
#include <cstddef>
#include <span>
#include <utility>

namespace atl::net {

class Buffer {
 public:
  static constexpr std::size_t capacity = 16 * 1024;

  Buffer() noexcept = default;
  /// Takes a buffer from this thread's pool (or allocates one).
  static Buffer lease();
  Buffer(Buffer&& o) noexcept : data_(std::exchange(o.data_, nullptr)) {}
  Buffer& operator=(Buffer&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
    }
    return *this;
  }
  ~Buffer() { release(); }

  explicit operator bool() const noexcept { return data_ != nullptr; }
  char* data() const noexcept { return data_; }
  std::span<char> span() const noexcept { return {data_, data_ ? capacity : 0}; }
  /// Returns the buffer to the pool.
  void release() noexcept;

 private:
  char* data_ = nullptr;
};

/// Buffers currently held in this thread's pool (for tests and metrics).
std::size_t pooled_buffers() noexcept;

}  // namespace atl::net
