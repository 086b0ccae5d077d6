#pragma once
// Socket: one connection (TCP, TLS over TCP, or Unix), driven by coroutines.
//
// Every operation suspends the calling task instead of blocking the loop.
// Writes go straight to the kernel: the socket's send buffer is the
// high-water mark, so a slow reader suspends the writer and nothing grows in
// user space. Reads borrow the caller's buffer; wait_readable() lets an idle
// connection wait with no buffer at all.
#include <atoll/net/address.hpp>
#include <atoll/runtime/loop.hpp>
#include <atoll/runtime/stop.hpp>
#include <atoll/runtime/task.hpp>

#include <sys/types.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

typedef struct ssl_st SSL;

namespace atl::net {

/// Outcome of an I/O operation: bytes moved, or an errno value.
/// Besides the kernel's errors: ETIMEDOUT (io timeout or deadline passed),
/// ECANCELED (the server closed the connection), ESHUTDOWN (the server is
/// draining and this socket asked to be woken for it: see wake_on_drain).
struct IoResult {
  std::size_t bytes = 0;
  int error = 0;
  explicit operator bool() const noexcept { return error == 0; }
  /// The peer closed its side (a read of zero bytes).
  bool eof() const noexcept { return error == 0 && bytes == 0; }
};

/// Per-loop signals a server hands its connections (see Server::stop).
struct ConnSignals {
  runtime::StopSource drain;  // the server stops accepting: finish up
  runtime::StopSource abort;  // the drain deadline passed: stop now
};

class Socket {
 public:
  /// Adopts a connected, non-blocking descriptor on the current loop.
  Socket(int fd, const sockaddr* peer, socklen_t peer_len, ConnSignals* signals = nullptr);
  ~Socket();
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  /// Reads at most buf.size() bytes; 0 bytes means the peer closed.
  runtime::Task<IoResult> read(std::span<char> buf);
  /// Writes all of `data` (or fails).
  runtime::Task<IoResult> write(std::span<const char> data);
  runtime::Task<IoResult> write(std::string_view s) { return write(std::span(s.data(), s.size())); }
  /// Writes all of the buffers, in one system call where the kernel allows.
  /// `iov` is modified as it is consumed.
  runtime::Task<IoResult> writev(std::span<iovec> iov);
  /// Sends `count` bytes of `file_fd` from `offset`: sendfile(2) on plain
  /// sockets; pread + write in 16 KiB chunks under TLS (no kTLS yet).
  runtime::Task<IoResult> sendfile(int file_fd, off_t offset, std::size_t count);
  /// Resolves when the socket has bytes (or EOF) to read; holds no buffer.
  /// (A plain awaitable, not a coroutine: an idle connection waits here, and
  /// a coroutine frame would cost it ~200 bytes for as long as it idles.)
  struct ReadableAwaiter;
  ReadableAwaiter wait_readable() noexcept;

  /// Reads without waiting: EAGAIN if nothing is there.
  IoResult try_read(std::span<char> buf);
  /// Writes what the kernel takes now, without waiting.
  IoResult try_writev(std::span<iovec> iov);

  /// The fast paths of read() and writev(), as plain calls: what read() or
  /// writev() would do if it did not have to wait. EAGAIN means "would wait"
  /// (always so under TLS, whose records go through read() and writev()).
  IoResult read_now(std::span<char> buf);
  IoResult writev_now(std::span<iovec> iov);

  /// True if bytes (or TLS records) wait to be read right now; no waiting.
  bool has_pending_input() const noexcept;

  /// Half-closes: the peer reads EOF, we may still read.
  void shutdown_write() noexcept;
  /// Closes now (also done by the destructor).
  void close() noexcept;
  bool is_open() const noexcept { return watch_.fd >= 0; }
  int fd() const noexcept { return watch_.fd; }

  const PeerAddress& peer() const noexcept { return peer_; }
  Endpoint local() const;
  bool is_tls() const noexcept { return ssl_ != nullptr; }
  /// The protocol agreed by ALPN ("h2", "http/1.1"), or empty.
  std::string_view alpn() const noexcept;
  /// The host name the client asked for by SNI, or empty.
  std::string_view server_name() const noexcept;

  /// Each wait for readiness (read or write) may last at most this long
  /// before the operation fails with ETIMEDOUT; 0 disables. Defends against
  /// peers that stop reading or writing and hold a slot forever.
  void set_io_timeout(std::int64_t ms) noexcept { io_timeout_ms_ = ms; }
  std::int64_t io_timeout() const noexcept { return io_timeout_ms_; }
  /// An absolute deadline (loop ms) for all I/O until cleared with 0: used for
  /// handshakes and header reads, where the total time matters.
  void set_deadline(std::int64_t at_ms) noexcept { deadline_ms_ = at_ms; }

  /// While set, a read that is waiting (or starts waiting) while the server
  /// drains fails with ESHUTDOWN: set it between requests so a drain closes
  /// idle connections at once.
  void set_wake_on_drain(bool on) noexcept;
  bool draining() const noexcept { return draining_; }
  /// The server's drain and abort signals, to await or to pass to sleep_for.
  runtime::StopSource* drain_signal() const noexcept {
    return signals_ ? &signals_->drain : nullptr;
  }
  runtime::StopSource* abort_signal() const noexcept {
    return signals_ ? &signals_->abort : nullptr;
  }

  /// The owning loop's clock (ms), for deadlines relative to now.
  std::int64_t loop_now() const noexcept { return loop_->now_ms(); }

  std::uint64_t bytes_in() const noexcept { return bytes_in_; }
  std::uint64_t bytes_out() const noexcept { return bytes_out_; }

  // --- used by the server ---------------------------------------------------
  /// Runs the server side of the TLS handshake (SSL object already attached).
  runtime::Task<IoResult> tls_handshake();
  void attach_tls(SSL* ssl) noexcept { ssl_ = ssl; }
  /// Gives TLS up before the handshake: plain text from here on (to answer
  /// a client that spoke plain text to a TLS port).
  void drop_tls() noexcept;
  /// Copies the bytes waiting to be read, without consuming them or
  /// waiting (MSG_PEEK on the descriptor, beneath TLS); EAGAIN if none.
  IoResult peek(std::span<char> buf) noexcept;
  /// The server is draining: wake an idle reader (see set_wake_on_drain).
  void notify_drain() noexcept;
  /// Fails every pending and later operation with ECANCELED and shuts the
  /// descriptor down so the peer notices.
  void cancel() noexcept;

 private:
  struct WaitAwaiter;
  WaitAwaiter wait(bool for_write) noexcept;
  int precheck(bool for_write) const noexcept;
  void begin_wait(bool for_write, runtime::Waiter w);
  int end_wait(bool for_write) noexcept;
  static void on_timer(runtime::TimerNode* node);
  runtime::Task<IoResult> tls_read(std::span<char> buf);
  runtime::Task<IoResult> tls_write(std::span<const char> data);

  runtime::IoWatch watch_;
  runtime::Loop* loop_;
  runtime::TimerNode timer_;  // the earlier of the two directions' wait deadlines
  // Reads and writes may wait at once (one task reading, another writing):
  // each direction keeps its own deadline and its own timed-out mark.
  std::int64_t read_wait_due_ms_ = 0;
  std::int64_t write_wait_due_ms_ = 0;
  std::int64_t deadline_ms_ = 0;
  std::int64_t io_timeout_ms_ = 0;
  std::uint64_t bytes_in_ = 0;
  std::uint64_t bytes_out_ = 0;
  SSL* ssl_ = nullptr;
  ConnSignals* signals_;
  PeerAddress peer_;
  bool read_timed_out_ = false;
  bool write_timed_out_ = false;
  bool cancelled_ = false;
  bool draining_ = false;
  bool wake_on_drain_ = false;
};

struct Socket::WaitAwaiter {
  Socket& s;
  bool for_write;
  int error = 0;
  bool await_ready() noexcept {
    error = s.precheck(for_write);
    return error != 0 || (for_write ? s.watch_.writable : s.watch_.readable);
  }
  void await_suspend(std::coroutine_handle<> h) {
    s.begin_wait(for_write, {h, s.loop_->current_tag()});
  }
  int await_resume() noexcept { return error ? error : s.end_wait(for_write); }
};

struct Socket::ReadableAwaiter {
  WaitAwaiter inner;
  bool tls_pending = false;  // OpenSSL already holds decrypted bytes
  bool await_ready() noexcept { return tls_pending || inner.await_ready(); }
  void await_suspend(std::coroutine_handle<> h) { inner.await_suspend(h); }
  IoResult await_resume() noexcept { return IoResult{0, tls_pending ? 0 : inner.await_resume()}; }
};

}  // namespace atl::net
